/* ids.h — job ids made by lanework: 24 characters, time-ordered. */
#ifndef LW_IDS_H
#define LW_IDS_H

#define LW_ID_LEN 24

/* Writes a new id into out (LW_ID_LEN characters and a NUL): 12 hex digits of
 * the millisecond clock then 12 random hex digits, so ids sort by creation
 * time and do not collide across processes (lw_random64: reseeded after a
 * fork). Cannot fail. */
void lw_id_new(char out[LW_ID_LEN + 1]);

#endif
