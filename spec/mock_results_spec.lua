-- spec/mock_results_spec.lua: leadpipe.mock's results pages, stats and export.csv, through
-- curl (helpers: spec/support/mock_http.lua).
local mock = require "leadpipe.mock"
local m = require "spec.support.mock_http"
local cjson = require "cjson"

local parse_csv, curl, decode, request = m.parse_csv, m.curl, m.decode, m.request
local runs_path, create_run, results, assert_error = m.runs_path, m.create_run, m.results, m.assert_error

describe("leadpipe.mock", function()
    local fx = m.fixture()
    local srv, AUD1K

    setup(function()
        srv, AUD1K = fx.srv, fx.AUD1K
    end)

    describe("GET results", function()
        local run, page1, page2

        setup(function()
            run = create_run(srv, AUD1K)
            page1 = decode(results(srv, AUD1K, run.id, "?limit=500&offset=0")).data
            page2 = decode(results(srv, AUD1K, run.id, "?limit=500&offset=500")).data
        end)

        it("pages by limit and offset and ends past the total", function()
            assert.are.equal(500, #page1.results)
            assert.are.equal(500, #page2.results)
            assert.are.equal(1000, page1.total)
            assert.are.equal(500, page2.offset)
            local tail = decode(results(srv, AUD1K, run.id, "?limit=500&offset=990")).data
            assert.are.equal(10, #tail.results)
            assert.are.equal(page2.results[491].hashedEmail, tail.results[1].hashedEmail)
            local past = decode(results(srv, AUD1K, run.id, "?offset=1000")).data
            assert.are.same({}, past.results)
            assert.are.equal(1000, past.total)
            local default = decode(results(srv, AUD1K, run.id)).data
            assert.are.equal(100, default.limit)
            assert.are.equal(0, default.offset)
            assert.are.equal(100, #default.results)
        end)

        it("rejects bad limit and offset with 400 naming the parameter", function()
            local cases = {
                { "?limit=0", "limit" }, { "?limit=501", "limit" }, { "?limit=-5", "limit" },
                { "?limit=1.5", "limit" }, { "?limit=abc", "limit" }, { "?limit=", "limit" },
                { "?offset=-1", "offset" }, { "?offset=x", "offset" }, { "?offset=", "offset" },
                { "?offset=99999999999999999999999", "offset" },
            }
            for _, c in ipairs(cases) do
                local body = assert_error(results(srv, AUD1K, run.id, c[1]), 400, "INVALID_PARAMETER")
                assert.are.equal(c[2], body.error.param)
                assert.is_truthy(body.error.message:find(c[2], 1, true))
            end
            assert.are.equal(200, results(srv, AUD1K, run.id, "?limit=500&offset=0").status)
        end)

        it("gives every row a unique 64-hex hashedEmail", function()
            local seen, n = {}, 0
            for _, page in ipairs{ page1, page2 } do
                for _, p in ipairs(page.results) do
                    assert.is_truthy(p.hashedEmail:match("^" .. ("%x"):rep(64) .. "$"))
                    assert.is_nil(seen[p.hashedEmail])
                    seen[p.hashedEmail] = true
                    n = n + 1
                end
            end
            assert.are.equal(1000, n)
        end)

        it("fills every documented field, with realistic nulls and variety", function()
            local fields = { "hashedEmail", "firstName", "lastName", "fullName", "businessEmail",
                "personalEmail", "email", "primaryContactEmail", "phone", "linkedinUrl", "headline",
                "jobTitle", "seniority", "department", "company", "geo", "intent", "demographics",
                "signals", "compliance", "source" }
            local seniorities = { entry = 1, senior = 1, manager = 1, director = 1, vp = 1,
                                  c_suite = 1, owner = 1, partner = 1 }
            local nulls = { phone = 0, geo = 0, company = 0, seniority = 0 }
            local present = { phone = 0 }
            local non_ascii, quoted, backslash, empty_topics, mid_scores = 0, 0, 0, 0, 0
            local rows = {}
            for _, p in ipairs(page1.results) do rows[#rows + 1] = p end
            for _, p in ipairs(page2.results) do rows[#rows + 1] = p end
            for _, p in ipairs(rows) do
                for _, f in ipairs(fields) do
                    assert.is_not_nil(p[f], f)   -- present (cjson.null when null)
                end
                for k in pairs(nulls) do
                    if p[k] == cjson.null then nulls[k] = nulls[k] + 1 end
                end
                if p.phone ~= cjson.null then
                    present.phone = present.phone + 1
                    assert.is_truthy(p.phone:match("^%+1%d%d%d%d%d%d%d%d%d%d$"))
                end
                if p.seniority ~= cjson.null then assert.is_truthy(seniorities[p.seniority]) end
                if p.company ~= cjson.null then
                    for _, k in ipairs{ "name", "domain", "industry", "industryGroup",
                                        "revenueRange", "size" } do
                        assert.is_not_nil(p.company[k], k)
                    end
                end
                if p.geo ~= cjson.null then
                    for _, k in ipairs{ "city", "state", "stateCode", "country", "countryCode" } do
                        assert.is_not_nil(p.geo[k], k)
                    end
                end
                assert.are.equal(p.firstName .. " " .. p.lastName, p.fullName)
                if p.fullName:find("[\128-\255]") then non_ascii = non_ascii + 1 end
                local text = cjson.encode(p)
                if text:find('\\"', 1, true) then quoted = quoted + 1 end
                if text:find("\\\\", 1, true) then backslash = backslash + 1 end
                local score = p.intent.score
                assert.is_true(score >= 1 and score <= 99)
                if score >= 50 and score <= 89 then mid_scores = mid_scores + 1 end
                assert.is_table(p.intent.matchedTopics)
                if #p.intent.matchedTopics == 0 then empty_topics = empty_topics + 1 end
                for _, t in ipairs(p.intent.matchedTopics) do
                    assert.is_number(t.topicId)
                    assert.is_string(t.topicName)
                    assert.is_truthy(t.type == "b2b" or t.type == "b2c")
                end
            end
            for k, n in pairs(nulls) do
                assert.is_true(n > 0 and n < #rows / 2, k .. " nulls: " .. n)
            end
            assert.is_true(present.phone > 0)
            assert.is_true(non_ascii > 0)
            assert.is_true(quoted > 0)
            assert.is_true(backslash > 0)
            assert.is_true(empty_topics > 0)
            assert.is_true(mid_scores > #rows / 2)
        end)

        it("writes an empty matchedTopics as []", function()
            local res = results(srv, AUD1K, run.id, "?limit=500")
            assert.is_truthy(res.body:find('"matchedTopics":[]', 1, true))
        end)

        it("is deterministic from the seed", function()
            local aud = { { id = AUD1K, rows = 30 } }
            local a = assert(mock.start{ seed = 5, audiences = aud })
            local b = assert(mock.start{ seed = 5, audiences = aud })
            local c = assert(mock.start{ seed = 6, audiences = aud })
            local function first_rows(s)
                local r = create_run(s, AUD1K)
                return decode(results(s, AUD1K, r.id, "?limit=30")).data.results
            end
            local ra, rb, rc = first_rows(a), first_rows(b), first_rows(c)
            assert.are.same(ra, rb)
            assert.are_not.equal(ra[1].hashedEmail, rc[1].hashedEmail)
            a:stop()
            b:stop()
            c:stop()
        end)
    end)

    describe("GET stats", function()
        it("computes fill rates, the score histogram and averages from the run's rows", function()
            local run = create_run(srv, AUD1K)
            local res = request(srv, "GET", runs_path(AUD1K) .. "/" .. run.id .. "/stats")
            assert.are.equal(200, res.status)
            local data = decode(res).data
            assert.are.equal(run.id, data.run.id)
            assert.are.equal(AUD1K, data.run.audienceId)
            assert.are.equal("completed", data.run.status)
            assert.are.equal(1000, data.run.resultCount)
            local stats = data.stats
            assert.are.equal(1000, stats.total)
            local rows, phones, scores = {}, 0, { 0, 0, 0, 0 }
            for offset = 0, 500, 500 do
                local page = decode(results(srv, AUD1K, run.id, "?limit=500&offset=" .. offset)).data
                for _, p in ipairs(page.results) do rows[#rows + 1] = p end
            end
            local sum = 0
            for _, p in ipairs(rows) do
                if p.phone ~= cjson.null then phones = phones + 1 end
                local s = p.intent.score
                local b = s < 50 and 1 or s < 70 and 2 or s < 90 and 3 or 4
                scores[b] = scores[b] + 1
                sum = sum + s
            end
            assert.are.equal(phones, stats.fillRates.phone.count)
            assert.is_true(math.abs(stats.fillRates.phone.percent - phones / 10) < 0.01)
            assert.are.equal(1000, stats.fillRates.hashedEmail.count)
            local labels = { "1-49", "50-69", "70-89", "90-99" }
            for i, h in ipairs(stats.scoreHistogram) do
                assert.are.equal(labels[i], h.bucket)
                assert.are.equal(scores[i], h.count)
            end
            assert.is_true(math.abs(stats.averages.intentScore - sum / 1000) < 0.01)
        end)
    end)

    describe("GET export.csv", function()
        it("redirects to the second listener, which streams the CSV without needing the key",
            function()
                local run = create_run(srv, AUD1K)
                local res = request(srv, "GET", runs_path(AUD1K) .. "/" .. run.id .. "/export.csv")
                assert.are.equal(302, res.status)
                local location = res.headers["location"]
                assert.are.equal(srv.redirect_url, location:sub(1, #srv.redirect_url))
                assert.is_truthy(location:find("/exports/" .. run.id .. ".csv?sig=", 1, true))

                srv:reset_stats()
                local csv = curl{ location }
                assert.are.equal(200, csv.status)
                assert.are.equal("300000", csv.headers["x-export-row-cap"])
                assert.is_truthy(csv.headers["content-type"]:find("text/csv", 1, true))
                local rows = parse_csv(csv.body)
                assert.are.equal(1001, #rows)
                local header = rows[1]
                assert.are.equal("hashedEmail", header[1])
                for i = 2, #rows do assert.are.equal(#header, #rows[i]) end
                assert.is_truthy(csv.body:find('"[^"\r\n]*,[^"\r\n]*"'))  -- a quoted comma
                local page = decode(results(srv, AUD1K, run.id, "?limit=500")).data.results
                local col = {}
                for i, name in ipairs(header) do col[name] = i end
                for i = 1, 500 do
                    local p, row = page[i], rows[i + 1]
                    assert.are.equal(p.hashedEmail, row[col.hashedEmail])
                    assert.are.equal(p.fullName, row[col.fullName])
                    assert.are.equal(p.headline == cjson.null and "" or p.headline, row[col.headline])
                end
                local st = srv:stats()
                assert.are.equal(1, st.redirect_requests)
                assert.is_false(st.redirect_key_seen)

                -- a client that leaks the key to the other origin is caught
                assert.are.equal(200, curl{ "-H", "x-api-key: " .. srv.api_key, location }.status)
                assert.is_true(srv:stats().redirect_key_seen)
                -- a wrong signature is refused
                assert.are.equal(403, curl{ (location:gsub("sig=%x+", "sig=00")) }.status)
            end)

        it("caps the rows and says so in X-Export-Row-Cap", function()
            local s = assert(mock.start{ export_cap = 5, audiences = { { id = AUD1K, rows = 20 } } })
            local run = create_run(s, AUD1K)
            local res = request(s, "GET", runs_path(AUD1K) .. "/" .. run.id .. "/export.csv")
            local csv = curl{ res.headers["location"] }
            assert.are.equal("5", csv.headers["x-export-row-cap"])
            assert.are.equal(6, #parse_csv(csv.body))
            s:stop()
        end)
    end)
end)
