---@meta
-- leadpipe.types: the LuaLS (lua-language-server) classes of the data the API hands out and
-- the option tables its calls take. Nothing here runs: it is a definition file (---@meta)
-- that editors read, like the annotations of any LuaLS library. The classes of a module's
-- own objects stay with it (leadpipe.Error in errors.lua, leadpipe.Host in hosts.lua,
-- leadpipe.Where and leadpipe.Predicate in filter.lua, leadpipe.Rows in iter.lua).

---@alias leadpipe.HostName "blocking"|"openresty"|"neovim"|"luv"
---@alias leadpipe.RunStatus "queued"|"running"|"completed"|"failed"|"cancelled"
---@alias leadpipe.PageState "queued"|"running"|"completed"

--- Options of leadpipe.new. Every key is optional except api_key (or $LEADPIPE_API_KEY).
---@class leadpipe.Options
---@field api_key? string required unless $LEADPIPE_API_KEY is set; sent only to base_url's origin
---@field base_url? string default $LEADPIPE_BASE_URL or "https://api.aws53.cloud"
---@field allow_insecure_http? boolean accept http:// to a host that is not loopback (default false)
---@field timeout? number seconds for one request, all of it (default 60; 0.001..86400)
---@field connect_timeout? number seconds to connect (default 10; 0.001..3600)
---@field max_retries? integer retries of a failed request (default 3; 0..10)
---@field backoff_base? number exponential backoff: about backoff_base * 2^n s (default 0.5)
---@field backoff_max? number cap of one backoff, seconds (default 20)
---@field max_retry_after? number longest Retry-After to honour (default 60); longer: rate_limited
---@field max_response? integer bytes; larger responses fail with code "too_large" (default 256 MiB)
---@field user_agent? string appended to the User-Agent (1..200 bytes, no control characters)
---@field host? leadpipe.HostName|leadpipe.Host how to wait (default "blocking")
---@field verify? boolean TLS certificate and host name verification (default true)
---@field logger? fun(event: leadpipe.LogEvent) called for each send, response, retry, redirect, error, gate
---@field wait_timeout? number default timeout of wait_run and of waiting iterators (default 600)
---@field poll_interval? number first wait between polls of a pending run, seconds (default 1)
---@field max_poll_interval? number longest wait between polls, seconds (default 10)
---@field cache? table leadpipe.cache.memory{...} or leadpipe.cache.shared(...): completed runs' pages
---@field gate? table leadpipe.gate.shared(dict_name): the rate gate of every worker of the node

--- What the logger option receives; never holds the API key.
---@class leadpipe.LogEvent
---@field type "send"|"response"|"retry"|"redirect"|"error"|"gate"
---@field at number the host's clock
---@field method? string
---@field path? string
---@field status? integer
---@field attempt? integer
---@field delay? number
---@field message? string
---@field code? string
---@field request_id? string
---@field retry_after? number

--- A run of an audience (the API's IntentAudienceRun). Every field but id, status and
--- runType may be missing.
---@class leadpipe.Run
---@field id string UUID, for results, stats and exports
---@field status leadpipe.RunStatus
---@field runType "manual"|"daily"|"preview"
---@field audienceId? string
---@field organizationId? string
---@field configHash? string
---@field dataDate? string YYYY-MM-DD
---@field resultKey? string
---@field candidateCount? integer matched before hydration and limits
---@field resultCount? integer rows available in results
---@field attempts? integer
---@field nextAttemptAt? string
---@field idempotencyKey? string echo of the Idempotency-Key
---@field errorCode? string when failed
---@field errorMessage? string when failed
---@field startedAt? string
---@field completedAt? string
---@field cancelledAt? string
---@field createdAt? string
---@field updatedAt? string
---@field [string] any

--- A company of a person row.
---@class leadpipe.Company
---@field name? string
---@field domain? string
---@field industry? string
---@field industryGroup? string
---@field revenueRange? string
---@field [string] any

--- Where a person is.
---@class leadpipe.Geo
---@field city? string
---@field state? string
---@field stateCode? string
---@field country? string
---@field countryCode? string
---@field [string] any

--- A topic a person showed intent for.
---@class leadpipe.Topic
---@field topicId integer
---@field topicName? string
---@field type? string "b2b" or "b2c"
---@field industry? string
---@field category? string

--- A person's intent signals.
---@class leadpipe.Intent
---@field score? number 1..100
---@field topicOverlap? integer
---@field matchedTopics? leadpipe.Topic[]

--- A person row of a run's results. JSON nulls are absent keys: any field, and any nested
--- object, may be missing; keys the API adds are kept.
---@class leadpipe.Person
---@field hashedEmail? string SHA-256 of the email, 64 hex digits
---@field firstName? string
---@field lastName? string
---@field fullName? string
---@field businessEmail? string
---@field personalEmail? string
---@field email? string
---@field primaryContactEmail? string
---@field phone? string
---@field linkedinUrl? string
---@field headline? string
---@field jobTitle? string
---@field seniority? string "director", "vp", "c_suite", ...
---@field department? string
---@field company? leadpipe.Company
---@field geo? leadpipe.Geo
---@field intent? leadpipe.Intent
---@field [string] any

--- One results page.
---@class leadpipe.Page
---@field state leadpipe.PageState
---@field run leadpipe.Run
---@field results leadpipe.Person[] rows (with people{ where = } only the kept ones; raw: JSON text)
---@field total integer rows of the run
---@field limit integer
---@field offset integer
---@field rows? integer rows the page had (set by results/pages/people)
---@field kept? integer rows that passed a pushed-down where (nil when nothing was filtered)
---@field request_id? string

---@class leadpipe.CreateRunOpts
---@field idempotency_key? string sent on every retry (generated when not given)

---@class leadpipe.ListRunsOpts
---@field limit? integer 1..100 (API default 25)

---@class leadpipe.ResultsOpts
---@field limit? integer 1..500 (default 100)
---@field offset? integer default 0
---@field deadline? number seconds for the whole call, retries included (kind "timeout", code "DEADLINE")

---@class leadpipe.WaitOpts
---@field timeout? number seconds to wait (default the client's wait_timeout)
---@field interval? number first wait between polls (default the client's poll_interval)
---@field max_interval? number longest wait between polls (default the client's max_poll_interval)
---@field on_poll? fun(page: leadpipe.Page) called with each pending page
---@field deadline? number seconds for the whole call: waits, pages, retries (kind "timeout", code "DEADLINE")

---@class leadpipe.PagesOpts: leadpipe.WaitOpts
---@field limit? integer rows per page, 1..500 (default 100)
---@field offset? integer first row (default 0)
---@field wait? boolean wait for a pending run (default true); false: kind "not_ready"
---@field prefetch? integer most pages in flight ahead of the reader, 0..64 (default 64)

---@class leadpipe.PeopleOpts: leadpipe.PagesOpts
---@field where? leadpipe.Where|leadpipe.Predicate pushed down into the decoder when it can take it
---@field filter? leadpipe.Predicate any function, applied after where
---@field on_page? fun(page: leadpipe.Page) sees each page (rows, kept, results)
---@field raw? boolean each row is its JSON text (a string); filter is then not allowed

---@class leadpipe.CountOpts: leadpipe.PagesOpts
---@field where? leadpipe.Where|leadpipe.Predicate counted in the decoder when it can take it
---@field filter? leadpipe.Predicate any function, applied after where (the rows are then built)

--- The API client (leadpipe.new). Calls return value or nil, err; iterators raise err.
--- Its methods are in lua/leadpipe/client/ (runs, waiting, results, audiences, exports).
---@class leadpipe.Client
---@field base_url string
---@field host leadpipe.Host
---@field user_agent string
---@field wait_timeout number
---@field poll_interval number
---@field max_poll_interval number
---@field closed? boolean true after close()
---@field requester table the request layer (leadpipe.http; internal)

-- ===== audiences (client/audiences.lua) =====

--- An audience (GET /v1/intent/audiences). Fields the API adds are kept.
---@class leadpipe.Audience
---@field id string UUID
---@field name string
---@field status "draft"|"active"|"paused"
---@field organizationId? string
---@field accessType? string
---@field dailyRefreshEnabled? boolean
---@field audienceSize? integer
---@field lastRefreshedAt? string date-time of the newest completed run
---@field createdAt? string
---@field updatedAt? string
---@field config? table
---@field [string] any

---@class leadpipe.AudiencesOpts
---@field status? "draft"|"active"|"paused"
---@field limit? integer 1..100

---@class leadpipe.LatestRunOpts
---@field status? leadpipe.RunStatus only runs with that status

-- ===== stats and exports (client/exports.lua) =====

---@class leadpipe.StatsOpts: leadpipe.WaitOpts
---@field wait? boolean wait for a pending run (default false: kind "not_ready")

---@class leadpipe.ExportCsvOpts: leadpipe.WaitOpts
---@field path? string the file to write (one of path and sink)
---@field sink? fun(chunk: string): boolean|nil receives the CSV piece by piece; false stops
---@field wait? boolean wait for a pending run (default true)

--- What export_csv returns.
---@class leadpipe.CsvExport
---@field path? string the file written (nil with a sink)
---@field bytes integer bytes of CSV written
---@field row_cap? integer the API's cap of rows per export (X-Export-Row-Cap)
---@field request_id? string the API's trace id of the export
---@field [string] any

--- A run's stats (GET .../stats): the run, and stats{ total, fillRates, scoreHistogram,
--- averages }.
---@class leadpipe.Stats
---@field run? leadpipe.Run
---@field stats? leadpipe.RunStats
---@field [string] any

---@class leadpipe.RunStats
---@field total? integer
---@field fillRates? table<string, { count: integer, percent: number }> by field path
---@field scoreHistogram? { bucket: string, count: integer, percent: number }[]
---@field averages? table

--- A stored CSV export of a run.
---@class leadpipe.Export
---@field id string UUID
---@field runId? string
---@field audienceId? string
---@field organizationId? string
---@field exportType? string "csv"
---@field status? string "processing", "completed", ...
---@field byteSize? integer
---@field rowCount? integer
---@field fileName? string
---@field contentType? string
---@field errorCode? string
---@field errorMessage? string
---@field completedAt? string
---@field expiresAt? string
---@field createdAt? string
---@field updatedAt? string
---@field [string] any

--- What create_export and export return.
---@class leadpipe.StoredExport
---@field export leadpipe.Export
---@field downloadUrl string signed URL, no API key needed
---@field downloadUrlExpiresAt? string
---@field downloadUrlTtlSeconds? integer
---@field created boolean true when this call created the export (HTTP 201)
---@field [string] any

