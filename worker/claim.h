/*
 * claim.h — claiming jobs with claim.lua (claim.c).
 */
#ifndef LW_CLAIM_H
#define LW_CLAIM_H

#include "state.h"

/* Sends one claim.lua call for up to n jobs of t (from the pump). */
void claim_send(tenant *t, int n);

#endif
