/*
 * mock_people.h: deterministic fake people rows for the fake Leadpipe API.
 *
 * A row is a pure function of (row key, index): the row key mixes the server seed, the
 * audience and the run, so a run of a million rows costs no memory. The same person
 * struct feeds the JSON writer, the CSV writer and the run statistics, so all three agree.
 *
 * License: MIT (see the repository).
 */
#ifndef LEADPIPE_MOCK_PEOPLE_H
#define LEADPIPE_MOCK_PEOPLE_H

#include <stdint.h>

#include "mock_buf.h"

#pragma GCC visibility push(hidden)

/* What a run's rows depend on. */
typedef struct {
    uint64_t key;          /* mixes seed, audience and run */
    char data_date[11];    /* the run's dataDate, "YYYY-MM-DD" */
} lpm_rows_t;

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
