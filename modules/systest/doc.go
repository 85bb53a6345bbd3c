// Package systest proves the service as a whole: it builds the real binary,
// starts it (one process or several) against a fresh database, the shared
// Redis and a fake eats-picker-orders, and drives it the way producers, the
// app and operators do, while it injects faults: PostgreSQL restarted,
// Redis stopped, the process killed with SIGKILL, the upstream down, slow
// or answering garbage. Every event a test produces is checked against a
// reference model written in the test from DESIGN §3 (latest created_at
// wins, the history keeps the earliest time, the tie rules), never against
// the service's own code.
//
// The tests are behind the build tag "system", so `go test ./...` skips
// them. They restart PostgreSQL and Redis, so they run alone, after the
// unit tests and never in parallel with them:
//
//	go tool task test:system   # the suite, with a 90 s soak (CI runs this)
//	go tool task test:soak     # the 10-minute soak (SOAK_DURATION), results into docs/reliability.md
//	go test -tags system -p 1 -count=1 ./modules/systest/...
//
// Environment:
//
//	TEST_DATABASE_URL, TEST_REDIS_URL  the servers (pgtest's defaults: 127.0.0.1:5432 and :6379)
//	SYSTEST_PG_CLUSTER                 "<version>/<name>" of the cluster pg_ctlcluster restarts
//	                                   (default: the only version under /etc/postgresql, "main")
//	SYSTEST_LOG_DIR                    where each process' log goes (default: a new directory in $TMPDIR)
//	SOAK_DURATION                      the soak's length (default 10m; the task test:system sets 90s; at least 60s)
//	SOAK_RECORD=1                      write the soak's results into docs/reliability.md
//
// docs/reliability.md lists every scenario, what it injects and checks,
// and the results of a run; docs/runbook.md is what to watch in production.
package systest
