/*
 * mock_people.h: deterministic fake people rows for the fake Leadpipe API.
 *
 * A row is a pure function of (rows, index), so a run of a million rows costs no memory.
 * The same person struct feeds the JSON writer, the CSV writer and the run statistics, so
 * all three agree.
 *
 * Daily churn: the runs of an audience are its days (its first run is day 1, the next day
 * 2, ...), and successive days share most people, as a daily audience does. A day's rows
 * are the slots [day * shift, day * shift + n) of the audience, in an order of its own
 * (an affine permutation of the row index); shift is 2% of n (at least 1), so each day
 * the oldest 2% of the slots drop out and 2% new ones come in. A slot's person is replaced
 * every LPM_REPLACE_DAYS days (at a phase of its own: 2.5% of the slots a day), the new
 * person having a new hashedEmail. A person keeps every field from day to day except the
 * intent score, drawn again every LPM_SCORE_DAYS days (5% a day), and the job title,
 * seniority and department, drawn again every LPM_TITLE_DAYS days (2% a day). All of it
 * follows from the seed, the audience and the day, so a spec that reads two runs knows
 * exactly who was added, removed and changed.
 *
 * License: MIT (see the repository).
 */
#ifndef LEADPIPE_MOCK_PEOPLE_H
#define LEADPIPE_MOCK_PEOPLE_H

#include <stdint.h>

#include "mock_buf.h"

#pragma GCC visibility push(hidden)

/* What a run's rows depend on (lpm_rows_init fills all but key and data_date). */
typedef struct {
    uint64_t key;          /* mixes seed, audience and run: the run's own ids and signatures */
    uint64_t people;       /* mixes seed and audience: who the audience's people are */
    uint64_t day;          /* the run's place among its audience's runs: 1, 2, ... */
    uint64_t n;            /* rows of the run */
    uint64_t shift;        /* slots the window moves a day */
    uint64_t perm_a, perm_b; /* row i is slot day * shift + (perm_a * i + perm_b) mod n */
    char data_date[11];    /* the run's dataDate, "YYYY-MM-DD" */
} lpm_rows_t;

#define LPM_SHIFT_PER_MILLE 20 /* the window moves by 2% of the rows a day */
#define LPM_REPLACE_DAYS 40    /* a slot gets a new person every 40 days (2.5% a day) */
#define LPM_SCORE_DAYS 20      /* a person's intent score is drawn again every 20 days */
#define LPM_TITLE_DAYS 50      /* ... and job title, seniority, department every 50 */

#define LPM_MAX_TOPICS 3

/* Every random choice of one person; -1 means null. */
typedef struct {
    uint64_t hash[4];      /* hashedEmail, 256 bits, unique per index within a run */
    int16_t first, last;
    int8_t business_form;  /* -1: no business email */
    int8_t personal_domain;/* -1: no personal email */
    uint16_t personal_num;
    int64_t phone;         /* -1: null; else 10 digits after +1 */
    int8_t linkedin;       /* 0/1 */
    int8_t headline;       /* -1 null, 0 "<title> at <company>", >0 a special headline */
    int8_t title_form;     /* -1: jobTitle null */
    int8_t seniority, department;
    int16_t company;       /* -1: company object null */
    int8_t revenue, size;
    int8_t geo;            /* -1: geo object null */
    int8_t city_null;
    int8_t score;          /* 1..99 */
    int8_t ntopics;        /* matchedTopics length, 0..3 */
    int8_t overlap;        /* topicOverlap >= max(1, ntopics) */
    int8_t topics[LPM_MAX_TOPICS];
    int8_t demo;           /* 0: demographics null */
    int8_t age, gender, income;
    int8_t do_not_call, email_opt_out, ccpa;
    int8_t source_method;
} lpm_person_t;

/* Fills people, day, n, shift and the permutation of rows (n rows on that day). */
void lpm_rows_init(lpm_rows_t *rows, uint64_t people, uint64_t day, uint64_t n);
void lpm_person_make(const lpm_rows_t *rows, uint64_t index, lpm_person_t *p);
/* Appends the person as one JSON object. */
void lpm_person_json(lpm_buf_t *b, const lpm_rows_t *rows, const lpm_person_t *p);
/* Appends the CSV header line (CRLF-terminated). */
void lpm_person_csv_header(lpm_buf_t *b);
/* Appends the person as one CSV line (CRLF-terminated). */
void lpm_person_csv(lpm_buf_t *b, const lpm_person_t *p);

/* Appends the "stats" object of the stats endpoint for rows [0, total) (exact up to two
 * million rows, from an even sample scaled to the total beyond):
 * {"total":N,"fillRates":{...},"scoreHistogram":[...],"averages":{...}} */
void lpm_people_stats(lpm_buf_t *b, const lpm_rows_t *rows, uint64_t total);

#pragma GCC visibility pop

#endif
