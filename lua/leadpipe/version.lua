-- leadpipe.version: the one place the version is written. Every module's _VERSION reads it,
-- the Makefile passes it to the C modules (-DLP_VERSION), and a spec checks the rockspecs'
-- names and versions against it.
return "0.1.0"
