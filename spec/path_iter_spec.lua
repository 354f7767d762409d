-- Specs for leadpipe.path (dotted paths) and leadpipe.iter (iterator helpers) as modules of
-- their own; their behaviour in depth is in filter_spec.lua, through the re-exports.

local path = require "leadpipe.path"
local iter = require "leadpipe.iter"
local filter = require "leadpipe.filter"
local errors = require "leadpipe.errors"

describe("leadpipe.path", function()
    it("splits, validates and reads dotted paths", function()
        assert.are.same({ "company", "name" }, path.split("company.name"))
        assert.are.same({ "intent", "matchedTopics", 1, "topicName" },
            path.split("intent.matchedTopics.1.topicName"))
        assert.is_true(path.valid("a.b"))
        assert.is_false(path.valid("a..b"))
        assert.is_false(path.valid(".a"))
        assert.is_false(path.valid(5))
        local row = { company = { name = "Acme" }, intent = { matchedTopics = { { topicName = "crm" } } } }
        assert.are.equal("Acme", path.get(row, "company.name"))
        assert.are.equal("crm", path.get(row, "intent.matchedTopics.1.topicName"))
        assert.is_nil(path.get(row, "company.name.x"))
        assert.are.equal("Acme", path.get_parts(row, path.split("company.name")))
    end)

    it("raises an invalid_argument error object for a bad path", function()
        local ok, err = pcall(path.get, {}, "a..b")
        assert.is_false(ok)
        assert.is_true(errors.is_error(err))
        assert.are.equal("invalid_argument", err.kind)
        assert.are.equal('get: path must be a dotted path string like "company.name", got "a..b"',
            err.message)
    end)

    it("is what leadpipe.get and format's projections use", function()
        assert.are.equal(path.get, require("leadpipe").get)
        local format = require "leadpipe.format"
        assert.are.same({ company = { name = "Acme" } },
            format.project({ company = { name = "Acme", domain = "acme.com" } }, { "company.name" }))
    end)
end)

describe("leadpipe.iter", function()
    it("is the one home of the iterator helpers (leadpipe.filter does not re-export them)", function()
        for _, name in ipairs({ "filter", "map", "take", "collect", "count", "top" }) do
            assert.is_function(iter[name], name)
            assert.is_nil(filter[name], name)
        end
        assert.is_nil(filter.get)
    end)

    it("chains lazily over arrays and functions", function()
        local rows = { { s = 1 }, { s = 5 }, { s = 3 }, { s = 4 } }
        local big = iter.filter(rows, function(r) return r.s > 2 end)
        assert.are.same({ 5, 3 }, iter.collect(iter.map(iter.take(big, 2), function(r) return r.s end)))
        assert.are.equal(4, iter.count(rows))
        assert.are.same({ { s = 5 }, { s = 4 } }, iter.top(rows, 2, "s"))
        -- a where{} table works as the predicate
        assert.are.equal(0, iter.count(iter.filter(rows, { min_score = 1 })))
    end)

    it("raises invalid_argument error objects on misuse", function()
        local ok, err = pcall(iter.take, {}, -1)
        assert.is_false(ok)
        assert.are.equal("invalid_argument", err.kind)
        assert.are.equal("take: n must be a non-negative integer, got -1", err.message)
    end)
end)
