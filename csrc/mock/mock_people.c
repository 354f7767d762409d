/*
 * mock_people.c: deterministic fake people rows (JSON, CSV, statistics).
 *
 * The tables mix plain ASCII with non-ASCII UTF-8 (é, ü, ñ, ø, 山田 ...), and a few
 * values that need JSON escaping (quotes, backslash, a tab) or CSV quoting (commas).
 * Nullable fields are null at rough real-world rates. See mock_people.h.
 *
 * Longer than ~500 lines on purpose: a quarter of it is the data tables, and the JSON, CSV
 * and statistics writers read those tables' private layout; splitting would only publish it.
 *
 * License: MIT (see the repository).
 */
#include "mock_people.h"

#include <string.h>

#define COUNT(a) (sizeof(a) / sizeof((a)[0]))

/* ===== TABLES ===== */

typedef struct {
    const char *name;
    const char *slug; /* ASCII form used in e-mail addresses and URLs */
} name_t;

static const name_t first_names[] = {
    { "sherry", "sherry" }, { "james", "james" }, { "maria", "maria" }, { "john", "john" },
    { "patricia", "patricia" }, { "robert", "robert" }, { "jennifer", "jennifer" },
    { "michael", "michael" }, { "linda", "linda" }, { "william", "william" },
    { "elizabeth", "elizabeth" }, { "david", "david" }, { "barbara", "barbara" },
    { "richard", "richard" }, { "susan", "susan" }, { "joseph", "joseph" },
    { "jessica", "jessica" }, { "thomas", "thomas" }, { "sarah", "sarah" },
    { "charles", "charles" }, { "karen", "karen" }, { "daniel", "daniel" },
    { "nancy", "nancy" }, { "matthew", "matthew" }, { "lisa", "lisa" }, { "anthony", "anthony" },
    { "betty", "betty" }, { "mark", "mark" }, { "emily", "emily" }, { "priya", "priya" },
    { "wei", "wei" }, { "olivia", "olivia" }, { "liam", "liam" }, { "noah", "noah" },
    { "ava", "ava" }, { "lucas", "lucas" }, { "mia", "mia" }, { "ethan", "ethan" },
    { "fatima", "fatima" }, { "kwame", "kwame" }, { "ingrid", "ingrid" },
    { "dmitri", "dmitri" }, { "aoife", "aoife" }, { "mohammed", "mohammed" },
    { "jean-luc", "jeanluc" }, { "robert \"bob\"", "bob" },
    { "josé", "jose" }, { "zoë", "zoe" }, { "søren", "soren" }, { "björn", "bjorn" },
    { "renée", "renee" }, { "françois", "francois" }, { "łukasz", "lukasz" },
    { "siobhán", "siobhan" }, { "太郎", "taro" }, { "さくら", "sakura" },
};

static const name_t last_names[] = {
    { "lynn", "lynn" }, { "smith", "smith" }, { "johnson", "johnson" },
    { "williams", "williams" }, { "brown", "brown" }, { "jones", "jones" },
    { "miller", "miller" }, { "davis", "davis" }, { "wilson", "wilson" },
    { "anderson", "anderson" }, { "taylor", "taylor" }, { "thomas", "thomas" },
    { "moore", "moore" }, { "martin", "martin" }, { "lee", "lee" }, { "white", "white" },
    { "harris", "harris" }, { "clark", "clark" }, { "lewis", "lewis" }, { "walker", "walker" },
    { "hall", "hall" }, { "young", "young" }, { "allen", "allen" }, { "king", "king" },
    { "wright", "wright" }, { "scott", "scott" }, { "green", "green" }, { "baker", "baker" },
    { "adams", "adams" }, { "nelson", "nelson" }, { "hill", "hill" }, { "chen", "chen" },
    { "patel", "patel" }, { "kim", "kim" }, { "kowalski", "kowalski" },
    { "dubois", "dubois" }, { "rossi", "rossi" }, { "o'brien", "obrien" },
    { "de la cruz", "delacruz" }, { "smith-jones", "smithjones" },
    { "van der berg", "vanderberg" },
    { "garcía", "garcia" }, { "müller", "muller" }, { "núñez", "nunez" },
    { "østergaard", "ostergaard" }, { "ramírez", "ramirez" }, { "schröder", "schroder" },
    { "nguyễn", "nguyen" }, { "山田", "yamada" }, { "佐藤", "sato" },
};

typedef struct {
    const char *name, *domain, *industry, *group;
} company_t;

static const company_t companies[] = {
    { "example company", "example.com", "software development", "technology" },
    { "acme, inc.", "acme.com", "machinery manufacturing", "industrials" },
    { "the \"best\" bakery", "bestbakery.com", "food and beverage services", "consumer goods" },
    { "müller gmbh", "mueller.de", "industrial machinery", "industrials" },
    { "globex corporation", "globex.com", "utilities", "energy" },
    { "initech", "initech.com", "it services and it consulting", "technology" },
    { "umbrella health", "umbrellahealth.com", "hospitals and health care", "healthcare" },
    { "stark industries", "stark.com", "defense and space manufacturing", "industrials" },
    { "wayne enterprises", "wayne.com", "financial services", "financials" },
    { "hooli", "hooli.com", "internet", "technology" },
    { "pied piper", "piedpiper.com", "software development", "technology" },
    { "soylent corp", "soylent.com", "food production", "consumer goods" },
    { "tyrell corporation", "tyrell.com", "biotechnology research", "healthcare" },
    { "cyberdyne systems", "cyberdyne.com", "robotics engineering", "technology" },
    { "nakatomi trading", "nakatomi.co.jp", "wholesale", "retail" },
    { "café du monde", "cafedumonde.com", "restaurants", "consumer services" },
    { "北京科技", "bjtech.cn", "computers and electronics manufacturing", "technology" },
    { "blue sky marketing", "blueskymktg.com", "advertising services", "media" },
    { "northwind traders", "northwind.com", "import and export", "retail" },
    { "contoso ltd", "contoso.com", "it services and it consulting", "technology" },
    { "fabrikam", "fabrikam.com", "retail apparel and fashion", "consumer goods" },
    { "vandelay industries", "vandelay.com", "import and export", "retail" },
    { "dunder mifflin", "dundermifflin.com", "paper and forest product manufacturing",
      "materials" },
    { "oceanic airlines", "oceanic.com", "airlines and aviation", "transportation" },
    { "gringotts", "gringotts.co.uk", "banking", "financials" },
    { "zoë's kitchen", "zoeskitchen.com", "restaurants", "consumer services" },
    { "smith, jones & co", "smithjones.com", "accounting", "professional services" },
    { "bluth company", "bluth.com", "real estate", "real estate" },
    { "sterling cooper", "sterlingcooper.com", "advertising services", "media" },
    { "aperture science", "aperture.com", "research services", "technology" },
    { "massive dynamic", "massivedynamic.com", "technology, information and internet",
      "technology" },
    { "los pollos hermanos", "lospolloshermanos.com", "restaurants", "consumer services" },
};

static const char *const revenue_ranges[] = {
    "under 1 million", "1 million to 5 million", "5 million to 10 million",
    "10 million to 25 million", "25 million to 50 million", "50 million to 100 million",
    "100 million to 250 million", "250 million to 500 million", "500 million to 1 billion",
    "over 1 billion",
};

static const char *const company_sizes[] = {
    "1 to 10", "11 to 25", "26 to 50", "51 to 100", "101 to 250", "251 to 500",
    "501 to 1000", "1001 to 5000", "5001 to 10000", "10001+",
};

typedef struct {
    const char *city, *state, *code, *country, *ccode;
} geo_t;

static const geo_t geos[] = {
    { "san francisco", "CALIFORNIA", "CA", "united states", "US" },
    { "los angeles", "CALIFORNIA", "CA", "united states", "US" },
    { "san josé", "CALIFORNIA", "CA", "united states", "US" },
    { "new york", "NEW YORK", "NY", "united states", "US" },
    { "austin", "TEXAS", "TX", "united states", "US" },
    { "dallas", "TEXAS", "TX", "united states", "US" },
    { "chicago", "ILLINOIS", "IL", "united states", "US" },
    { "seattle", "WASHINGTON", "WA", "united states", "US" },
    { "boston", "MASSACHUSETTS", "MA", "united states", "US" },
    { "denver", "COLORADO", "CO", "united states", "US" },
    { "miami", "FLORIDA", "FL", "united states", "US" },
    { "atlanta", "GEORGIA", "GA", "united states", "US" },
    { "phoenix", "ARIZONA", "AZ", "united states", "US" },
    { "portland", "OREGON", "OR", "united states", "US" },
    { "coeur d'alene", "IDAHO", "ID", "united states", "US" },
    { "española", "NEW MEXICO", "NM", "united states", "US" },
    { "raleigh", "NORTH CAROLINA", "NC", "united states", "US" },
    { "minneapolis", "MINNESOTA", "MN", "united states", "US" },
    { "toronto", "ONTARIO", "ON", "canada", "CA" },
    { "münchen", "BAYERN", "BY", "germany", "DE" },
    { "são paulo", "SÃO PAULO", "SP", "brazil", "BR" },
    { "london", "ENGLAND", "ENG", "united kingdom", "GB" },
    { "東京", "TOKYO", "13", "japan", "JP" },
    { "zürich", "ZÜRICH", "ZH", "switzerland", "CH" },
};

typedef struct {
    int id;
    const char *name, *type, *industry, *category;
} topic_t;

static const topic_t topics[] = {
    { 117796, "Internet Marketing Automation", "b2b", "Marketing", "Technology" },
    { 2201, "Customer Relationship Management", "b2b", "Software", "Technology" },
    { 3310, "Cloud Computing", "b2b", "IT Services", "Technology" },
    { 4420, "Payroll Software", "b2b", "Human Resources", "Business Services" },
    { 5530, "Sales Enablement", "b2b", "Sales", "Business Services" },
    { 6640, "Cybersecurity", "b2b", "IT Services", "Technology" },
    { 7750, "Home Improvement", "b2c", "Retail", "Consumer" },
    { 8860, "Electric Vehicles", "b2c", "Automotive", "Consumer" },
    { 9970, "Data Warehousing", "b2b", "Software", "Technology" },
    { 10080, "Commercial Real Estate", "b2b", "Real Estate", "Finance" },
    { 11190, "Personal Finance, Budgeting & Saving", "b2c", "Finance", "Consumer" },
    { 12300, "Café Equipment", "b2b", "Hospitality", "Food & Beverage" },
    { 13410, "Account-Based Marketing", "b2b", "Marketing", "Business Services" },
    { 14520, "Telehealth", "b2c", "Health Care", "Health" },
    { 15630, "Supply Chain \"Visibility\"", "b2b", "Logistics", "Operations" },
    { 16740, "Mortgage Refinancing", "b2c", "Finance", "Consumer" },
};

static const char *const seniorities[] = {
    "entry", "senior", "manager", "director", "vp", "c_suite", "owner", "partner",
};
/* cumulative weights out of 100; the rest (8) is null */
static const int seniority_cdf[] = { 15, 35, 55, 70, 78, 83, 88, 92 };

static const char *const departments[] = {
    "marketing", "sales", "engineering", "finance", "operations", "human resources",
    "information technology", "legal", "customer success", "product",
};

static const char *const chiefs[] = {
    "chief marketing officer", "chief revenue officer", "chief technology officer",
    "chief financial officer", "chief operating officer", "chief people officer",
    "chief information officer", "general counsel", "chief customer officer",
    "chief product officer",
};

static const char *const special_headlines[] = {
    "helping b2b teams grow \"pipeline\" faster",
    "devops / sre \\ platform engineering",
    "speaker, author & advisor",
    "building\tthings that scale",
    "ex-google \xc2\xb7 now building something new",
    "marketing leader \xf0\x9f\x9a\x80",
};

static const char *const personal_domains[] = {
    "gmail.com", "yahoo.com", "outlook.com", "icloud.com", "hotmail.com", "proton.me",
};

static const char *const age_ranges[] = { "18-24", "25-34", "35-44", "45-54", "55-64", "65+" };
static const char *const genders[] = { "male", "female" };
static const char *const income_ranges[] = {
    "under $50,000", "$50,000 to $99,999", "$100,000 to $149,999", "$150,000 to $199,999",
    "$200,000+",
};
static const char *const source_methods[] = { "intent_graph", "pixel", "partner_feed" };

/* ===== GENERATION ===== */

static uint64_t gcd64(uint64_t a, uint64_t b)
{
    while (b) {
        uint64_t t = a % b;
        a = b;
        b = t;
    }
    return a;
}

void lpm_rows_init(lpm_rows_t *rows, uint64_t people, uint64_t day, uint64_t n)
{
    uint64_t h = lpm_mix64(people ^ lpm_mix64(0x7065726d00000000ULL ^ day));
    rows->people = people;
    rows->day = day;
    rows->n = n;
    rows->shift = n * LPM_SHIFT_PER_MILLE / 1000;
    if (rows->shift == 0)
        rows->shift = 1;
    rows->perm_a = 1;
    rows->perm_b = 0;
    if (n > 1) {
        /* a multiplier coprime with n (so i -> a*i + b mod n is a bijection), small
         * enough that a * i never overflows */
        uint64_t span = n - 1 < (1u << 20) ? n - 1 : (1u << 20);
        uint64_t a = 1 + lpm_mix64(h) % span;
        while (gcd64(a, n) != 1)
            a = a % span + 1;
        rows->perm_a = a;
        rows->perm_b = lpm_mix64(h ^ 0x5eedULL) % n;
    }
}

/* The person in row index of the day: the slot's occupant of the day (see mock_people.h).
 * slot + generation * 2^44 differs for every row of a run (slots < 2^44), and the rest are
 * bijections, so hashedEmail never repeats within a run. */
static uint64_t person_key(const lpm_rows_t *rows, uint64_t index)
{
    uint64_t slot, phase, gen;
    if (rows->n == 0)
        return rows->people;
    slot = rows->day * rows->shift + (rows->perm_a * index + rows->perm_b) % rows->n;
    phase = lpm_mix64(rows->people ^ lpm_mix64(slot ^ 0x736c6f7400000000ULL)) % LPM_REPLACE_DAYS;
    gen = (rows->day + phase) / LPM_REPLACE_DAYS;
    return rows->people ^ lpm_mix64((slot & ((1ULL << 44) - 1)) + (gen << 44));
}

/* A random stream for what a person redraws every `days` days: the same within one
 * version, another in the next; each person changes on a day of its own (phase). */
static void version_rng(lpm_rng_t *r, const lpm_person_t *p, const lpm_rows_t *rows,
                        uint64_t days, uint64_t tag)
{
    uint64_t phase = lpm_mix64(p->hash[1] ^ tag) % days;
    uint64_t version = (rows->day + phase) / days;
    r->s = lpm_mix64(p->hash[2] ^ lpm_mix64(tag ^ (version << 8)));
}

void lpm_person_make(const lpm_rows_t *rows, uint64_t index, lpm_person_t *p)
{
    lpm_rng_t r, rv;
    uint32_t x;
    int i, j;

    /* person_key is unique within a run and lpm_mix64 is a bijection, so hash[0] (and so
     * hashedEmail) never repeats within a run */
    p->hash[0] = lpm_mix64(person_key(rows, index));
    p->hash[1] = lpm_mix64(p->hash[0] ^ 0x5bd1e9955bd1e995ULL);
    p->hash[2] = lpm_mix64(p->hash[1] ^ 0x27d4eb2f165667c5ULL);
    p->hash[3] = lpm_mix64(p->hash[2] ^ 0x165667b19e3779f9ULL);
    r.s = p->hash[3];

    p->first = (int16_t)lpm_rng_below(&r, COUNT(first_names));
    p->last = (int16_t)lpm_rng_below(&r, COUNT(last_names));

    p->company = lpm_rng_pct(&r, 7) ? -1 : (int16_t)lpm_rng_below(&r, COUNT(companies));
    p->revenue = lpm_rng_pct(&r, 20) ? -1 : (int8_t)lpm_rng_below(&r, COUNT(revenue_ranges));
    p->size = lpm_rng_pct(&r, 15) ? -1 : (int8_t)lpm_rng_below(&r, COUNT(company_sizes));

    p->business_form = (p->company < 0 || lpm_rng_pct(&r, 25)) ? -1 : (int8_t)lpm_rng_below(&r, 3);
    p->personal_domain = lpm_rng_pct(&r, 35) ? -1 : (int8_t)lpm_rng_below(&r, COUNT(personal_domains));
    p->personal_num = (uint16_t)lpm_rng_below(&r, 1000);
    if (lpm_rng_pct(&r, 40))
        p->phone = -1;
    else
        p->phone = (int64_t)(201 + lpm_rng_below(&r, 789)) * 10000000 + lpm_rng_below(&r, 10000000);
    p->linkedin = lpm_rng_pct(&r, 20) ? 0 : 1;

    /* the role: drawn again every LPM_TITLE_DAYS days */
    version_rng(&rv, p, rows, LPM_TITLE_DAYS, 0x7469746c65ULL);
    x = lpm_rng_below(&rv, 100);
    p->seniority = -1;
    for (i = 0; i < (int)COUNT(seniority_cdf); i++) {
        if ((int)x < seniority_cdf[i]) {
            p->seniority = (int8_t)i;
            break;
        }
    }
    p->department = lpm_rng_pct(&rv, 10) ? -1 : (int8_t)lpm_rng_below(&rv, COUNT(departments));
    p->title_form = lpm_rng_pct(&rv, 10) ? -1 : (int8_t)lpm_rng_below(&rv, 2);
    x = lpm_rng_below(&r, 100);
    if (x < 30)
        p->headline = -1;
    else if (x < 40)
        p->headline = (int8_t)(1 + lpm_rng_below(&r, COUNT(special_headlines)));
    else
        p->headline = p->title_form < 0 ? -1 : 0;

    p->geo = lpm_rng_pct(&r, 5) ? -1 : (int8_t)lpm_rng_below(&r, COUNT(geos));
    p->city_null = (int8_t)lpm_rng_pct(&r, 8);

    /* scores: most 50-89 (peaked near 70), some 90-99, a tail below 50; drawn again every
     * LPM_SCORE_DAYS days */
    version_rng(&rv, p, rows, LPM_SCORE_DAYS, 0x73636f7265ULL);
    x = lpm_rng_below(&rv, 100);
    if (x < 14)
        p->score = (int8_t)(1 + lpm_rng_below(&rv, 49));
    else if (x < 88)
        p->score = (int8_t)(50 + lpm_rng_below(&rv, 21) + lpm_rng_below(&rv, 20));
    else
        p->score = (int8_t)(90 + lpm_rng_below(&rv, 10));

    x = lpm_rng_below(&r, 100);
    p->ntopics = (int8_t)(x < 10 ? 0 : x < 55 ? 1 : x < 85 ? 2 : 3);
    for (i = 0; i < p->ntopics; i++) {
        int t, dup;
        do {
            t = (int)lpm_rng_below(&r, COUNT(topics));
            dup = 0;
            for (j = 0; j < i; j++)
                dup |= p->topics[j] == t;
        } while (dup);
        p->topics[i] = (int8_t)t;
    }
    /* topicOverlap counts matched topics, some of them not listed */
    p->overlap = (int8_t)(p->ntopics ? p->ntopics : 1);
    if (lpm_rng_pct(&r, 20))
        p->overlap = (int8_t)(p->overlap + 1 + (int)lpm_rng_below(&r, 2));

    p->demo = lpm_rng_pct(&r, 30) ? 0 : 1;
    p->age = lpm_rng_pct(&r, 10) ? -1 : (int8_t)lpm_rng_below(&r, COUNT(age_ranges));
    p->gender = lpm_rng_pct(&r, 15) ? -1 : (int8_t)lpm_rng_below(&r, 2);
    p->income = lpm_rng_pct(&r, 25) ? -1 : (int8_t)lpm_rng_below(&r, COUNT(income_ranges));

    p->do_not_call = (int8_t)(p->phone >= 0 && lpm_rng_pct(&r, 7));
    p->email_opt_out = (int8_t)lpm_rng_pct(&r, 3);
    p->ccpa = (int8_t)(p->geo >= 0 && strcmp(geos[p->geo].code, "CA") == 0 &&
                       geos[p->geo].ccode[0] == 'U' && lpm_rng_pct(&r, 15));
    p->source_method = (int8_t)lpm_rng_below(&r, COUNT(source_methods));
}

/* ===== TEXT ===== */

/* The composed strings of one person; NULL for null. */
typedef struct {
    char full[96], business[128], personal[128], phone[16], linkedin[160], title[96];
    const char *business_p, *personal_p, *phone_p, *linkedin_p, *title_p, *headline_p;
    char headline[200];
} texts_t;

/* Bounded concatenation: appends s to dst (capacity cap) at *pos. */
static void cat(char *dst, size_t cap, size_t *pos, const char *s)
{
    size_t n = strlen(s);
    if (*pos + n >= cap)
        n = cap - 1 - *pos;
    memcpy(dst + *pos, s, n);
    *pos += n;
    dst[*pos] = '\0';
}

static void cat_uint(char *dst, size_t cap, size_t *pos, unsigned v, int width)
{
    char tmp[12];
    int i = 11;
    tmp[11] = '\0';
    do {
        tmp[--i] = (char)('0' + v % 10);
        v /= 10;
        width--;
    } while ((v || width > 0) && i > 0);
    cat(dst, cap, pos, tmp + i);
}

static void job_title(char *out, size_t cap, const lpm_person_t *p)
{
    size_t n = 0;
    const char *dept = p->department < 0 ? "business" : departments[p->department];
    int f = p->title_form;
    out[0] = '\0';
    switch (p->seniority) {
    case 0:
        cat(out, cap, &n, dept);
        cat(out, cap, &n, f ? " associate" : " coordinator");
        break;
    case 1:
        cat(out, cap, &n, "senior ");
        cat(out, cap, &n, dept);
        cat(out, cap, &n, f ? " analyst" : " specialist");
        break;
    case 2:
        if (f) {
            cat(out, cap, &n, "manager, ");
            cat(out, cap, &n, dept);
        } else {
            cat(out, cap, &n, dept);
            cat(out, cap, &n, " manager");
        }
        break;
    case 3:
        cat(out, cap, &n, "director of ");
        cat(out, cap, &n, dept);
        if (f)
            cat(out, cap, &n, " operations");
        break;
    case 4:
        cat(out, cap, &n, f ? "vp, " : "vp of ");
        cat(out, cap, &n, dept);
        break;
    case 5:
        cat(out, cap, &n, (f || p->department < 0) ? "chief executive officer" : chiefs[p->department]);
        break;
    case 6:
        cat(out, cap, &n, f ? "founder & owner" : "owner");
        break;
    case 7:
        cat(out, cap, &n, f ? "managing partner" : "partner");
        break;
    default:
        cat(out, cap, &n, dept);
        cat(out, cap, &n, f ? " lead" : " consultant");
        break;
    }
}

static void make_texts(const lpm_person_t *p, texts_t *t)
{
    const name_t *fn = &first_names[p->first], *ln = &last_names[p->last];
    size_t n;

    n = 0;
    t->full[0] = '\0';
    cat(t->full, sizeof(t->full), &n, fn->name);
    cat(t->full, sizeof(t->full), &n, " ");
    cat(t->full, sizeof(t->full), &n, ln->name);

    t->business_p = NULL;
    if (p->business_form >= 0) {
        char initial[2] = { fn->slug[0], '\0' };
        n = 0;
        t->business[0] = '\0';
        switch (p->business_form) {
        case 0:
            cat(t->business, sizeof(t->business), &n, fn->slug);
            cat(t->business, sizeof(t->business), &n, ".");
            cat(t->business, sizeof(t->business), &n, ln->slug);
            break;
        case 1:
            cat(t->business, sizeof(t->business), &n, fn->slug);
            break;
        default:
            cat(t->business, sizeof(t->business), &n, initial);
            cat(t->business, sizeof(t->business), &n, ln->slug);
            break;
        }
        cat(t->business, sizeof(t->business), &n, "@");
        cat(t->business, sizeof(t->business), &n, companies[p->company].domain);
        t->business_p = t->business;
    }

    t->personal_p = NULL;
    if (p->personal_domain >= 0) {
        n = 0;
        t->personal[0] = '\0';
        cat(t->personal, sizeof(t->personal), &n, fn->slug);
        cat(t->personal, sizeof(t->personal), &n, ".");
        cat(t->personal, sizeof(t->personal), &n, ln->slug);
        cat_uint(t->personal, sizeof(t->personal), &n, p->personal_num, 1);
        cat(t->personal, sizeof(t->personal), &n, "@");
        cat(t->personal, sizeof(t->personal), &n, personal_domains[p->personal_domain]);
        t->personal_p = t->personal;
    }

    t->phone_p = NULL;
    if (p->phone >= 0) {
        n = 0;
        t->phone[0] = '\0';
        cat(t->phone, sizeof(t->phone), &n, "+1");
        cat_uint(t->phone, sizeof(t->phone), &n, (unsigned)(p->phone / 10000000), 3);
        cat_uint(t->phone, sizeof(t->phone), &n, (unsigned)(p->phone % 10000000), 7);
        t->phone_p = t->phone;
    }

    t->linkedin_p = NULL;
    if (p->linkedin) {
        static const char hx[] = "0123456789abcdef";
        char tail[8];
        int i;
        for (i = 0; i < 6; i++)
            tail[i] = hx[(p->hash[1] >> (4 * i)) & 15];
        tail[6] = '\0';
        n = 0;
        t->linkedin[0] = '\0';
        cat(t->linkedin, sizeof(t->linkedin), &n, "https://linkedin.com/in/");
        cat(t->linkedin, sizeof(t->linkedin), &n, fn->slug);
        cat(t->linkedin, sizeof(t->linkedin), &n, "-");
        cat(t->linkedin, sizeof(t->linkedin), &n, ln->slug);
        cat(t->linkedin, sizeof(t->linkedin), &n, "-");
        cat(t->linkedin, sizeof(t->linkedin), &n, tail);
        t->linkedin_p = t->linkedin;
    }

    t->title_p = NULL;
    if (p->title_form >= 0) {
        job_title(t->title, sizeof(t->title), p);
        t->title_p = t->title;
    }

    t->headline_p = NULL;
    if (p->headline > 0) {
        t->headline_p = special_headlines[p->headline - 1];
    } else if (p->headline == 0 && t->title_p) {
        n = 0;
        t->headline[0] = '\0';
        cat(t->headline, sizeof(t->headline), &n, t->title);
        if (p->company >= 0) {
            cat(t->headline, sizeof(t->headline), &n, " at ");
            cat(t->headline, sizeof(t->headline), &n, companies[p->company].name);
        }
        t->headline_p = t->headline;
    }
}

/* ===== JSON ===== */

#define KEY(b, k) LPM_LIT(b, "\"" k "\":")

static void json_bool(lpm_buf_t *b, int v)
{
    if (v)
        LPM_LIT(b, "true");
    else
        LPM_LIT(b, "false");
}

static void json_pick(lpm_buf_t *b, const char *const *table, int i)
{
    lpm_json_strz(b, i < 0 ? NULL : table[i]);
}

void lpm_person_json(lpm_buf_t *b, const lpm_rows_t *rows, const lpm_person_t *p)
{
    texts_t t;
    const char *email, *primary;
    int i;

    make_texts(p, &t);
    email = t.personal_p ? t.personal_p : t.business_p;
    primary = t.business_p ? t.business_p : t.personal_p;

    if (!lpm_buf_reserve(b, 2048))
        return;
    LPM_LIT(b, "{\"hashedEmail\":\"");
    lpm_buf_addhex(b, p->hash, 32);
    LPM_LIT(b, "\",\"firstName\":");
    lpm_json_strz(b, first_names[p->first].name);
    LPM_LIT(b, ",\"lastName\":");
    lpm_json_strz(b, last_names[p->last].name);
    LPM_LIT(b, ",\"fullName\":");
    lpm_json_strz(b, t.full);
    LPM_LIT(b, ",\"businessEmail\":");
    lpm_json_strz(b, t.business_p);
    LPM_LIT(b, ",\"personalEmail\":");
    lpm_json_strz(b, t.personal_p);
    LPM_LIT(b, ",\"email\":");
    lpm_json_strz(b, email);
    LPM_LIT(b, ",\"primaryContactEmail\":");
    lpm_json_strz(b, primary);
    LPM_LIT(b, ",\"phone\":");
    lpm_json_strz(b, t.phone_p);
    LPM_LIT(b, ",\"linkedinUrl\":");
    lpm_json_strz(b, t.linkedin_p);
    LPM_LIT(b, ",\"headline\":");
    lpm_json_strz(b, t.headline_p);
    LPM_LIT(b, ",\"jobTitle\":");
    lpm_json_strz(b, t.title_p);
    LPM_LIT(b, ",\"seniority\":");
    json_pick(b, seniorities, p->seniority);
    LPM_LIT(b, ",\"department\":");
    json_pick(b, departments, p->department);

    LPM_LIT(b, ",\"company\":");
    if (p->company < 0) {
        LPM_LIT(b, "null");
    } else {
        const company_t *c = &companies[p->company];
        LPM_LIT(b, "{\"name\":");
        lpm_json_strz(b, c->name);
        LPM_LIT(b, ",\"domain\":");
        lpm_json_strz(b, c->domain);
        LPM_LIT(b, ",\"industry\":");
        lpm_json_strz(b, c->industry);
        LPM_LIT(b, ",\"industryGroup\":");
        lpm_json_strz(b, c->group);
        LPM_LIT(b, ",\"revenueRange\":");
        json_pick(b, revenue_ranges, p->revenue);
        LPM_LIT(b, ",\"size\":");
        json_pick(b, company_sizes, p->size);
        lpm_buf_addc(b, '}');
    }

    LPM_LIT(b, ",\"geo\":");
    if (p->geo < 0) {
        LPM_LIT(b, "null");
    } else {
        const geo_t *g = &geos[p->geo];
        LPM_LIT(b, "{\"city\":");
        lpm_json_strz(b, p->city_null ? NULL : g->city);
        LPM_LIT(b, ",\"state\":");
        lpm_json_strz(b, g->state);
        LPM_LIT(b, ",\"stateCode\":");
        lpm_json_strz(b, g->code);
        LPM_LIT(b, ",\"country\":");
        lpm_json_strz(b, g->country);
        LPM_LIT(b, ",\"countryCode\":");
        lpm_json_strz(b, g->ccode);
        lpm_buf_addc(b, '}');
    }

    LPM_LIT(b, ",\"intent\":{\"score\":");
    lpm_buf_adduint(b, (uint64_t)p->score);
    LPM_LIT(b, ",\"topicOverlap\":");
    lpm_buf_adduint(b, (uint64_t)p->overlap);
    LPM_LIT(b, ",\"matchedTopics\":[");
    for (i = 0; i < p->ntopics; i++) {
        const topic_t *tp = &topics[p->topics[i]];
        if (i)
            lpm_buf_addc(b, ',');
        LPM_LIT(b, "{\"topicId\":");
        lpm_buf_adduint(b, (uint64_t)tp->id);
        LPM_LIT(b, ",\"topicName\":");
        lpm_json_strz(b, tp->name);
        LPM_LIT(b, ",\"type\":");
        lpm_json_strz(b, tp->type);
        LPM_LIT(b, ",\"industry\":");
        lpm_json_strz(b, tp->industry);
        LPM_LIT(b, ",\"category\":");
        lpm_json_strz(b, tp->category);
        lpm_buf_addc(b, '}');
    }
    LPM_LIT(b, "]}");

    LPM_LIT(b, ",\"demographics\":");
    if (!p->demo) {
        LPM_LIT(b, "null");
    } else {
        LPM_LIT(b, "{\"ageRange\":");
        json_pick(b, age_ranges, p->age);
        LPM_LIT(b, ",\"gender\":");
        json_pick(b, genders, p->gender);
        LPM_LIT(b, ",\"incomeRange\":");
        json_pick(b, income_ranges, p->income);
        lpm_buf_addc(b, '}');
    }

    LPM_LIT(b, ",\"signals\":{\"hasBusinessEmail\":");
    json_bool(b, t.business_p != NULL);
    LPM_LIT(b, ",\"hasPersonalEmail\":");
    json_bool(b, t.personal_p != NULL);
    LPM_LIT(b, ",\"hasPhone\":");
    json_bool(b, t.phone_p != NULL);
    LPM_LIT(b, ",\"hasLinkedin\":");
    json_bool(b, t.linkedin_p != NULL);
    LPM_LIT(b, ",\"isDecisionMaker\":");
    json_bool(b, p->seniority >= 3);
    LPM_LIT(b, "},\"compliance\":{\"doNotCall\":");
    json_bool(b, p->do_not_call);
    LPM_LIT(b, ",\"emailOptOut\":");
    json_bool(b, p->email_opt_out);
    LPM_LIT(b, ",\"ccpaRestricted\":");
    json_bool(b, p->ccpa);
    LPM_LIT(b, "},\"source\":{\"provider\":\"leadpipe\",\"method\":\"");
    lpm_buf_adds(b, source_methods[p->source_method]);
    LPM_LIT(b, "\",\"dataDate\":\"");
    lpm_buf_adds(b, rows->data_date);
    LPM_LIT(b, "\"}}");
}

/* ===== CSV ===== */

static const char csv_header[] =
    "hashedEmail,firstName,lastName,fullName,businessEmail,personalEmail,email,"
    "primaryContactEmail,phone,linkedinUrl,headline,jobTitle,seniority,department,"
    "company.name,company.domain,company.industry,company.industryGroup,"
    "company.revenueRange,company.size,geo.city,geo.state,geo.stateCode,geo.country,"
    "geo.countryCode,intent.score,intent.topicOverlap,intent.matchedTopics,"
    "demographics.ageRange,demographics.gender,demographics.incomeRange\r\n";

void lpm_person_csv_header(lpm_buf_t *b)
{
    lpm_buf_add(b, csv_header, sizeof(csv_header) - 1);
}

static void csv_pick(lpm_buf_t *b, const char *const *table, int i)
{
    lpm_buf_addc(b, ',');
    lpm_csv_field(b, i < 0 ? NULL : table[i]);
}

static void csv_str(lpm_buf_t *b, const char *s)
{
    lpm_buf_addc(b, ',');
    lpm_csv_field(b, s);
}

void lpm_person_csv(lpm_buf_t *b, const lpm_person_t *p)
{
    texts_t t;
    const company_t *c = p->company < 0 ? NULL : &companies[p->company];
    const geo_t *g = p->geo < 0 ? NULL : &geos[p->geo];
    char topics_text[256];
    size_t n = 0;
    int i;

    make_texts(p, &t);
    lpm_buf_addhex(b, p->hash, 32);
    csv_str(b, first_names[p->first].name);
    csv_str(b, last_names[p->last].name);
    csv_str(b, t.full);
    csv_str(b, t.business_p);
    csv_str(b, t.personal_p);
    csv_str(b, t.personal_p ? t.personal_p : t.business_p);
    csv_str(b, t.business_p ? t.business_p : t.personal_p);
    csv_str(b, t.phone_p);
    csv_str(b, t.linkedin_p);
    csv_str(b, t.headline_p);
    csv_str(b, t.title_p);
    csv_pick(b, seniorities, p->seniority);
    csv_pick(b, departments, p->department);
    csv_str(b, c ? c->name : NULL);
    csv_str(b, c ? c->domain : NULL);
    csv_str(b, c ? c->industry : NULL);
    csv_str(b, c ? c->group : NULL);
    csv_str(b, c && p->revenue >= 0 ? revenue_ranges[p->revenue] : NULL);
    csv_str(b, c && p->size >= 0 ? company_sizes[p->size] : NULL);
    csv_str(b, g && !p->city_null ? g->city : NULL);
    csv_str(b, g ? g->state : NULL);
    csv_str(b, g ? g->code : NULL);
    csv_str(b, g ? g->country : NULL);
    csv_str(b, g ? g->ccode : NULL);
    lpm_buf_addc(b, ',');
    lpm_buf_adduint(b, (uint64_t)p->score);
    lpm_buf_addc(b, ',');
    lpm_buf_adduint(b, (uint64_t)p->overlap);
    topics_text[0] = '\0';
    for (i = 0; i < p->ntopics; i++) {
        if (i)
            cat(topics_text, sizeof(topics_text), &n, "|");
        cat(topics_text, sizeof(topics_text), &n, topics[p->topics[i]].name);
    }
    csv_str(b, topics_text);
    csv_str(b, p->demo && p->age >= 0 ? age_ranges[p->age] : NULL);
    csv_str(b, p->demo && p->gender >= 0 ? genders[p->gender] : NULL);
    csv_str(b, p->demo && p->income >= 0 ? income_ranges[p->income] : NULL);
    LPM_LIT(b, "\r\n");
}

/* ===== STATISTICS ===== */

static const char *const fill_names[] = {
    "hashedEmail", "firstName", "lastName", "fullName", "businessEmail", "personalEmail",
    "email", "primaryContactEmail", "phone", "linkedinUrl", "headline", "jobTitle",
    "seniority", "department", "company.name", "company.domain", "company.industry",
    "company.revenueRange", "company.size", "geo.city", "geo.state", "geo.country",
    "demographics.ageRange", "demographics.gender", "demographics.incomeRange",
    "intent.matchedTopics",
};
#define NFILL COUNT(fill_names)

/* The headline is present when it is special, or composed from a present jobTitle. */
static int has_headline(const lpm_person_t *p)
{
    return p->headline > 0 || (p->headline == 0 && p->title_form >= 0);
}

static void fill_flags(const lpm_person_t *p, unsigned char f[NFILL])
{
    int has_b = p->business_form >= 0, has_p = p->personal_domain >= 0;
    f[0] = 1;
    f[1] = 1;
    f[2] = 1;
    f[3] = 1;
    f[4] = (unsigned char)has_b;
    f[5] = (unsigned char)has_p;
    f[6] = (unsigned char)(has_b || has_p);
    f[7] = (unsigned char)(has_b || has_p);
    f[8] = p->phone >= 0;
    f[9] = p->linkedin != 0;
    f[10] = (unsigned char)has_headline(p);
    f[11] = p->title_form >= 0;
    f[12] = p->seniority >= 0;
    f[13] = p->department >= 0;
    f[14] = p->company >= 0;
    f[15] = p->company >= 0;
    f[16] = p->company >= 0;
    f[17] = p->company >= 0 && p->revenue >= 0;
    f[18] = p->company >= 0 && p->size >= 0;
    f[19] = p->geo >= 0 && !p->city_null;
    f[20] = p->geo >= 0;
    f[21] = p->geo >= 0;
    f[22] = p->demo && p->age >= 0;
    f[23] = p->demo && p->gender >= 0;
    f[24] = p->demo && p->income >= 0;
    f[25] = p->ntopics > 0;
}

static int64_t cents_of(uint64_t num, uint64_t den)
{
    if (den == 0)
        return 0;
    return (int64_t)((num * 100 + den / 2) / den);
}

#define STATS_EXACT_ROWS 2000000u

/* v * total / sampled, rounded, without overflow for realistic sizes */
static uint64_t scale(uint64_t v, uint64_t sampled, uint64_t total)
{
    return (uint64_t)((long double)v * (long double)total / (long double)sampled + 0.5L);
}

void lpm_people_stats(lpm_buf_t *b, const lpm_rows_t *rows, uint64_t total)
{
    static const char *const buckets[] = { "1-49", "50-69", "70-89", "90-99" };
    uint64_t fills[NFILL], hist[4] = { 0, 0, 0, 0 };
    uint64_t score_sum = 0, overlap_sum = 0, topics_sum = 0, i;
    unsigned char f[NFILL];
    lpm_person_t p;
    size_t k;

    /* exact up to STATS_EXACT_ROWS; beyond, an even sample scaled to the total */
    uint64_t step = total <= STATS_EXACT_ROWS ? 1 : (total + STATS_EXACT_ROWS - 1) / STATS_EXACT_ROWS;
    uint64_t sampled = 0;

    memset(fills, 0, sizeof(fills));
    for (i = 0; i < total; i += step) {
        sampled++;
        lpm_person_make(rows, i, &p);
        fill_flags(&p, f);
        for (k = 0; k < NFILL; k++)
            fills[k] += f[k];
        hist[p.score < 50 ? 0 : p.score < 70 ? 1 : p.score < 90 ? 2 : 3]++;
        score_sum += (uint64_t)p.score;
        overlap_sum += (uint64_t)p.overlap;
        topics_sum += (uint64_t)p.ntopics;
    }
    if (step > 1) {
        for (k = 0; k < NFILL; k++)
            fills[k] = scale(fills[k], sampled, total);
        for (k = 0; k < 4; k++)
            hist[k] = scale(hist[k], sampled, total);
        score_sum = scale(score_sum, sampled, total);
        overlap_sum = scale(overlap_sum, sampled, total);
        topics_sum = scale(topics_sum, sampled, total);
    }

    LPM_LIT(b, "{\"total\":");
    lpm_buf_adduint(b, total);
    LPM_LIT(b, ",\"fillRates\":{");
    for (k = 0; k < NFILL; k++) {
        if (k)
            lpm_buf_addc(b, ',');
        lpm_json_strz(b, fill_names[k]);
        LPM_LIT(b, ":{\"count\":");
        lpm_buf_adduint(b, fills[k]);
        LPM_LIT(b, ",\"percent\":");
        lpm_buf_addcents(b, cents_of(fills[k] * 100, total));
        lpm_buf_addc(b, '}');
    }
    LPM_LIT(b, "},\"scoreHistogram\":[");
    for (k = 0; k < 4; k++) {
        if (k)
            lpm_buf_addc(b, ',');
        LPM_LIT(b, "{\"bucket\":");
        lpm_json_strz(b, buckets[k]);
        LPM_LIT(b, ",\"count\":");
        lpm_buf_adduint(b, hist[k]);
        LPM_LIT(b, ",\"percent\":");
        lpm_buf_addcents(b, cents_of(hist[k] * 100, total));
        lpm_buf_addc(b, '}');
    }
    LPM_LIT(b, "],\"averages\":{\"intentScore\":");
    lpm_buf_addcents(b, cents_of(score_sum, total));
    LPM_LIT(b, ",\"topicOverlap\":");
    lpm_buf_addcents(b, cents_of(overlap_sum, total));
    LPM_LIT(b, ",\"matchedTopics\":");
    lpm_buf_addcents(b, cents_of(topics_sum, total));
    LPM_LIT(b, "}}");
}
