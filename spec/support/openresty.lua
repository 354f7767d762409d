-- spec/support/openresty.lua: a real nginx (Debian's nginx + libnginx-mod-http-lua) for the
-- cosocket wire's specs and benchmark. Writes a temporary prefix with an nginx.conf,
-- a test CA and a server certificate (openssl), starts nginx with one worker (or
-- opts.workers) on free loopback ports, and stops it.
--
--   local openresty = require "spec.support.openresty"
--   local ok, why = openresty.available()          -- false, reason when nginx cannot run
--   local ngx_srv = openresty.start{ mock = srv, run = run_id, workers = 2 }
--   ngx_srv.url        http://127.0.0.1:PORT      (handlers: spec/support/openresty_app.lua;
--                                                  /serve/*: spec/support/openresty_serve.lua)
--   ngx_srv.tls_url    https://127.0.0.1:PORT2    (nginx terminating TLS in front of the fake)
--   ngx_srv:stop()
-- The Lua modules come from ./lua and the core from ./build/jit (make build LUA_VERSION=jit).

local _M = {}

local MODULES = "/usr/lib/nginx/modules"
local JIT_CORE = "build/jit/leadpipe/core.so"

local shell = require "spec.support.shell"
local sh, read = shell.ok, shell.read_file

local function write(path, text)
    local f = assert(io.open(path, "wb"))
    f:write(text)
    f:close()
end

local function nginx_bin()
    for _, p in ipairs({ "/usr/sbin/nginx", "/usr/bin/nginx", "/usr/local/sbin/nginx" }) do
        if sh("test -x " .. p) then return p end
    end
end

--- true, or false and the reason nginx cannot run the specs here.
function _M.available()
    local only = os.getenv("LEADPIPE_HOST_SPECS")
    if only and only ~= "" and not (os.getenv("LEADPIPE_BUILD") or ""):find(only, 1, true) then
        return false, "runs once, in the " .. only .. " suite of make test"
    end
    if not nginx_bin() then return false, "no nginx binary (apt-get install nginx-light)" end
    if not sh("test -f " .. MODULES .. "/ngx_http_lua_module.so") then
        return false, "no nginx lua module (apt-get install libnginx-mod-http-lua)"
    end
    if not sh("test -f " .. JIT_CORE) then
        return false, "no " .. JIT_CORE .. " (make build LUA_VERSION=jit)"
    end
    if not sh("command -v openssl >/dev/null 2>&1") then return false, "no openssl command" end
    return true
end

--- skipped() -> true when nginx cannot run the specs here (available() says no): it then
--- registers a pending block that says why, and the describe block calling it returns.
function _M.skipped()
    local ok, why = _M.available()
    if ok then return false end
    require("busted").pending("runs in a real nginx: " .. why)
    return true
end

-- A test CA and a certificate for 127.0.0.1 signed by it (EC keys: fast to make).
-- nginx's lua module checks the peer name with X509_check_host (DNS names), libcurl
-- with the IP address: the certificate carries both.
local function make_certs(dir)
    write(dir .. "/ext.cnf", "subjectAltName=DNS:127.0.0.1,IP:127.0.0.1,DNS:localhost\n")
    local q = " >/dev/null 2>&1"
    return sh("cd " .. dir .. " && openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1"
        .. " -nodes -keyout ca.key -out ca.pem -days 2 -subj '/CN=leadpipe test CA'" .. q
        .. " && openssl req -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes"
        .. " -keyout server.key -out server.csr -subj '/CN=127.0.0.1'" .. q
        .. " && openssl x509 -req -in server.csr -CA ca.pem -CAkey ca.key -CAcreateserial"
        .. " -out server.pem -days 2 -extfile ext.cnf" .. q)
end

local CONF = [[
${user}worker_processes ${workers};
daemon on;
master_process on;
error_log logs/error.log warn;
pid logs/nginx.pid;

load_module ${modules}/ndk_http_module.so;
load_module ${modules}/ngx_http_lua_module.so;

events {
    worker_connections 1024;
}

http {
    access_log off;
    client_body_temp_path logs/client_body;
    proxy_temp_path logs/proxy;
    fastcgi_temp_path logs/fastcgi;
    uwsgi_temp_path logs/uwsgi;
    scgi_temp_path logs/scgi;

    lua_package_path "${lua_path}";
    lua_package_cpath "${root}/build/jit/?.so;;";
    lua_shared_dict results 1m;
    lua_shared_dict leadpipe ${dict_size};
    lua_socket_log_errors off;

    init_by_lua_block { require("spec.support.openresty_app").init() }
    init_worker_by_lua_block { require("spec.support.openresty_app").init_worker() }

    server {
        listen 127.0.0.1:${port}${reuseport};
        default_type application/json;

        location = /ping { content_by_lua_block { ngx.say("pong") } }
        location = /slow { content_by_lua_block { ngx.sleep(2) ngx.say("late") } }
        location = /pid { content_by_lua_block { require("spec.support.openresty_app").pid() } }
        location = /result { content_by_lua_block { require("spec.support.openresty_app").result() } }
        location = /people { content_by_lua_block { require("spec.support.openresty_app").people() } }
        location = /one { content_by_lua_block { require("spec.support.openresty_app").one() } }
        location = /changes { content_by_lua_block { require("spec.support.openresty_app").changes() } }
        location = /flaky { content_by_lua_block { require("spec.support.openresty_app").flaky() } }
        location = /stale { content_by_lua_block { require("spec.support.openresty_app").stale() } }
        location = /export { content_by_lua_block { require("spec.support.openresty_app").export() } }
        location = /raw { content_by_lua_block { require("spec.support.openresty_app").raw() } }
        location = /deadline { content_by_lua_block { require("spec.support.openresty_app").deadline() } }
        location = /cancel { content_by_lua_block { require("spec.support.openresty_app").cancel() } }
        location = /pages_closed {
            content_by_lua_block { require("spec.support.openresty_app").pages_closed() }
        }
        location = /timer { content_by_lua_block { require("spec.support.openresty_app").timer() } }
        location = /access {
            access_by_lua_block { require("spec.support.openresty_app").in_phase() }
            content_by_lua_block { require("spec.support.openresty_app").ctx_result() }
        }
        location = /rewrite {
            rewrite_by_lua_block { require("spec.support.openresty_app").in_phase() }
            content_by_lua_block { require("spec.support.openresty_app").ctx_result() }
        }
        location = /set {
            set_by_lua_block $r { require("spec.support.openresty_app").try_in_phase("set") return "" }
            content_by_lua_block { require("spec.support.openresty_app").result() }
        }
        location = /filters {
            header_filter_by_lua_block {
                require("spec.support.openresty_app").try_in_phase("header_filter")
            }
            body_filter_by_lua_block {
                if ngx.arg[2] then require("spec.support.openresty_app").try_in_phase("body_filter") end
            }
            log_by_lua_block { require("spec.support.openresty_app").try_in_phase("log") }
            content_by_lua_block { ngx.say("{}") }
        }
        # TLS to the fake through the proxy below, with and without the test CA.
        location = /runs_trusted {
            lua_ssl_trusted_certificate ${prefix}/ca.pem;
            content_by_lua_block { require("spec.support.openresty_app").runs() }
        }
        location = /runs { content_by_lua_block { require("spec.support.openresty_app").runs() } }
        location /serve/ { content_by_lua_block { require("spec.support.openresty_serve").handle() } }
    }

    server {
        listen 127.0.0.1:${tls_port} ssl;
        ssl_certificate ${prefix}/server.pem;
        ssl_certificate_key ${prefix}/server.key;
        location / {
            proxy_pass http://127.0.0.1:${mock_port};
            proxy_http_version 1.1;
            proxy_set_header Connection "";
        }
    }
}
]]

local function fill(template, vars)
    return (template:gsub("%${([%w_]+)}", function(k) return assert(vars[k], k) end))
end

-- As root, nginx would run its worker as nobody, who may not read the checkout.
local function is_root()
    local p = assert(io.popen("id -u"))
    local id = p:read("*l")
    p:close()
    return id == "0"
end

local function cwd()
    local p = assert(io.popen("pwd"))
    local d = p:read("*l")
    p:close()
    return d
end

-- Starts nginx on self.prefix/nginx.conf (written for one port by the caller), the command
-- prefixed by `env` (variables). true (self.master set, self a server) when it runs; false
-- when its port was taken (try another); raises on any other failure.
local function started(self, env)
    local prefix = self.prefix
    local log_file = prefix .. "/logs/start.log"
    if sh(env .. self.nginx .. " -p " .. prefix .. " -c nginx.conf >" .. log_file .. " 2>&1") then
        self.master = tonumber(read(prefix .. "/logs/nginx.pid"))
        setmetatable(self, { __index = _M })
        return true
    end
    local log = (read(log_file) or "") .. (read(prefix .. "/logs/error.log") or "")
    if not log:find("Address already in use", 1, true) then
        sh("rm -rf " .. prefix)
        error("nginx did not start:\n" .. log)
    end
    return false
end

--- Starts nginx. opts: mock (a leadpipe.mock server), audience, run (a completed run id),
-- workers (1), dict_size (of lua_shared_dict leadpipe, "8m").
-- Raises when nginx does not start (its error log in the message).
function _M.start(opts)
    local prefix = os.tmpname()
    os.remove(prefix)
    assert(sh("mkdir -p " .. prefix .. "/logs"))
    assert(make_certs(prefix), "openssl could not make the test certificates")
    local root = cwd()
    local srv = opts.mock
    local nginx = nginx_bin()
    local self = { prefix = prefix, nginx = nginx }
    for _ = 1, 10 do -- free ports: try random ones until nginx binds them
        local port, tls_port = math.random(20000, 40000), math.random(40001, 60000)
        self.port, self.tls_port = port, tls_port
        self.url = "http://127.0.0.1:" .. port
        self.tls_url = "https://127.0.0.1:" .. tls_port
        write(prefix .. "/leadpipe_test_cfg.lua", ("return { base_url = %q, api_key = %q, audience = %q,"
            .. " run = %q, self_url = %q, tls_url = %q }\n"):format(srv.url, srv.api_key,
            opts.audience or srv.audience, opts.run or "", self.url, self.tls_url))
        write(prefix .. "/nginx.conf", fill(CONF, {
            modules = MODULES, root = root, prefix = prefix, port = port, tls_port = tls_port,
            mock_port = srv.port, user = is_root() and "user root;\n" or "",
            workers = opts.workers or 1, dict_size = opts.dict_size or "8m",
            -- several workers: the kernel spreads connections over them
            reuseport = (opts.workers or 1) > 1 and " reuseport" or "",
            -- resty.core (which the lua module loads first) is in /usr/share/lua/5.1
            lua_path = table.concat({ root .. "/lua/?.lua", root .. "/lua/?/init.lua", root .. "/?.lua",
                prefix .. "/?.lua", "/usr/share/lua/5.1/?.lua", "/usr/share/lua/5.1/?/init.lua", ";" }, ";"),
        }))
        if started(self, "") then return self end
    end
    error("nginx: no free port found")
end

--- Starts examples/openresty/nginx.conf as its README says, in a temporary prefix: the
-- paths it takes from $prefix point into this checkout and its port is a free one.
-- env: LEADPIPE_* variables for nginx. -> a server like start()'s (url, stop, error_log)
function _M.start_example(env)
    local prefix = os.tmpname()
    os.remove(prefix)
    assert(sh("mkdir -p " .. prefix .. "/logs"))
    local root = cwd()
    local conf = assert(read(root .. "/examples/openresty/nginx.conf"))
    -- ${prefix} is the repository root in the README's command; nginx's files go to the
    -- temporary prefix's logs/ instead of build/openresty/
    conf = conf:gsub("%${prefix}", (root:gsub("%%", "%%%%")) .. "/"):gsub("build/openresty/", "logs/")
    -- As root, nginx's workers run as nobody, who may not read a checkout in a private
    -- directory (a CI clone under mktemp -d): keep them root, as the specs' own nginx does.
    if is_root() then conf = "user root;\n" .. conf end
    local vars = {}
    for k, v in pairs(env) do vars[#vars + 1] = k .. "='" .. v .. "'" end
    local self = { prefix = prefix, nginx = nginx_bin() }
    for _ = 1, 10 do
        local port = math.random(20000, 60000)
        self.url = "http://127.0.0.1:" .. port
        local listen = "listen 127.0.0.1:" .. port .. ";"
        write(prefix .. "/nginx.conf", (conf:gsub("listen 127%.0%.0%.1:8089;", listen)))
        if started(self, "env " .. table.concat(vars, " ") .. " ") then return self end
    end
    error("nginx: no free port found")
end

--- Fetches every URL at once from this process (libcurl, one connection each) while, when
-- opts.probe is a URL, a probe request is started every opts.every seconds (0.02) and timed.
-- Bounded by opts.limit seconds (60). -> array of { status =, body = } in the order of urls,
-- array of probe latencies in seconds.
function _M.fetch_all(urls, opts)
    opts = opts or {}
    local core = require "leadpipe.core"
    local s = core.session{ max_connections = #urls + 8, timeout = opts.limit or 60 }
    local reqs, out, probes, lat = {}, {}, {}, {}
    for i, u in ipairs(urls) do reqs[i] = s:request{ url = u } end
    local t_end = core.now() + (opts.limit or 60)
    local next_probe = core.now()
    while core.now() < t_end do
        s:perform()
        local pending = 0
        for i, r in ipairs(reqs) do
            if not out[i] then
                if r:done() then
                    local status, _, body = r:response()
                    out[i] = { status = status, body = body }
                    r:close()
                else
                    pending = pending + 1
                end
            end
        end
        for r, t0 in pairs(probes) do
            if r:done() then
                lat[#lat + 1] = core.now() - t0
                probes[r] = nil
                r:close()
            end
        end
        if pending == 0 then break end
        if opts.probe and core.now() >= next_probe then
            probes[s:request{ url = opts.probe }] = core.now()
            next_probe = next_probe + (opts.every or 0.02)
        end
        s:poll(0.001)
    end
    s:close()
    return out, lat
end

--- Seconds: median, 99th percentile and worst of an array of numbers.
function _M.summary(xs)
    local t = {}
    for i, x in ipairs(xs) do t[i] = x end
    table.sort(t)
    if #t == 0 then return 0, 0, 0 end
    return t[math.ceil(#t / 2)], t[math.max(1, math.ceil(#t * 0.99))], t[#t]
end

--- The error log so far (for failure messages).
function _M:error_log()
    return read(self.prefix .. "/logs/error.log") or ""
end

--- Stops nginx (quick shutdown of the master it started) and removes the prefix.
function _M:stop()
    if self.master then
        sh(self.nginx .. " -p " .. self.prefix .. " -c nginx.conf -s stop >/dev/null 2>&1")
        for _ = 1, 100 do -- up to 5 s for the master to exit
            if not sh("kill -0 " .. self.master .. " 2>/dev/null") then break end
            sh("sleep 0.05")
        end
        self.master = nil
    end
    if self.prefix and os.getenv("LEADPIPE_KEEP_NGINX") == nil then
        sh("rm -rf " .. self.prefix)
    end
end

return _M
