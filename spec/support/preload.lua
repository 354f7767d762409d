-- spec/support/preload.lua: run by busted before any spec file (.busted's helper).
--
-- busted insulates each spec file: what a file loads is unloaded when it ends. lua-luv
-- must not be loaded twice in one process (a second load of the module finds the default
-- loop of the first in a state it does not expect), and several files use it (the luv
-- host's specs, client:changes on the luv host). Loaded here, before the first file, it
-- is part of what every file starts with, so it is loaded once and never unloaded.
pcall(require, "luv")
