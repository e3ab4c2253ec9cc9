/*
 * run_persistent.h — persistent exec handlers (CONTRACT section 11): a
 * registry command with "persistent": true stays running and serves
 * attempts one at a time over JSON lines on its stdin/stdout
 * (run_persistent.c; the protocol and the process lifecycle are in
 * docs/DESIGN.md section 9, "Persistent handlers").
 */
#ifndef LW_RUN_PERSISTENT_H
#define LW_RUN_PERSISTENT_H

#include "runner.h"

/* The runner for kinds whose exec entry is persistent; listed in runners.c
 * before run_exec_runner, which runs the other exec entries. */
extern const runner run_persistent_runner;

#endif
