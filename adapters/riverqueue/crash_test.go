package riverqueue_test

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/revopsdev/revops/adapters/riverqueue"
	"github.com/revopsdev/revops/adapters/sqlstore"
	"github.com/revopsdev/revops/core"
	"github.com/revopsdev/revops/webhooks"
)

// cluster is a Postgres of the crash test's own, so that restarting it
// disturbs no other package's tests.
type cluster struct {
	t       testing.TB
	bin     string
	dir     string
	as      []string // runs a command as the cluster's owner
	url     string
	started bool
}

func startCluster(t testing.TB, bin string) *cluster {
	t.Helper()
	// Under /tmp with a short name: the owner must reach it, and the
	// socket path must be short.
	dir, err := os.MkdirTemp("/tmp", "revops-crash-")
	if err != nil {
		t.Fatal(err)
	}
	c := &cluster{t: t, bin: bin, dir: dir}
	owner := ""
	if os.Geteuid() == 0 {
		// Postgres refuses to run as root.
		u, err := user.Lookup("postgres")
		if err != nil {
			t.Fatalf("running as root, the crash test starts Postgres as the postgres user, which is missing: %v", err)
		}
		uid, _ := strconv.Atoi(u.Uid)
		gid, _ := strconv.Atoi(u.Gid)
		if err := os.Chown(dir, uid, gid); err != nil {
			t.Fatal(err)
		}
		c.as, owner = []string{"runuser", "-u", "postgres", "--"}, "postgres"
	} else {
		u, err := user.Current()
		if err != nil {
			t.Fatal(err)
		}
		owner = u.Username
	}
	t.Cleanup(func() {
		if c.started {
			c.ctl("-m", "immediate", "stop")
		}
		os.RemoveAll(dir)
	})
	c.run(filepath.Join(bin, "initdb"), "--no-sync", "-D", c.data(), "-U", owner, "-A", "trust", "-E", "UTF8", "--no-locale")
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := l.Addr().(*net.TCPAddr).Port
	l.Close()
	// fsync off is safe here: the test kills Postgres, not the machine.
	c.ctl("-o", fmt.Sprintf("-c listen_addresses=127.0.0.1 -p %d -k %s -c fsync=off -c max_connections=200", port, dir), "start")
	c.started = true
	c.url = fmt.Sprintf("postgres://%s@127.0.0.1:%d/postgres?sslmode=disable", owner, port)
	return c
}

func (c *cluster) data() string { return filepath.Join(c.dir, "data") }

// ctl runs pg_ctl with args (the last one being the action).
func (c *cluster) ctl(args ...string) {
	base := []string{filepath.Join(c.bin, "pg_ctl"), "-D", c.data(), "-l", filepath.Join(c.dir, "postgres.log"), "-w", "-t", "60"}
	c.run(append(base, args...)...)
}

func (c *cluster) run(args ...string) {
	c.t.Helper()
	args = append(append([]string{}, c.as...), args...)
	out, err := exec.Command(args[0], args[1:]...).CombinedOutput()
	if err != nil {
		log, _ := os.ReadFile(filepath.Join(c.dir, "postgres.log"))
		c.t.Fatalf("%s: %v\n%s\n%s", strings.Join(args, " "), err, out, log)
	}
}

// restart stops Postgres the way a crash does (immediate: no checkpoint,
// connections cut) and starts it again, which replays the WAL.
func (c *cluster) restart() { c.ctl("-m", "immediate", "restart") }

const crashChildEnv = "REVOPS_RIVERQUEUE_CRASH_WORKER"

// TestCrashWorker is the delivery worker TestCrashRecovery starts in a
// process of its own (this test binary, run again) and kills.
func TestCrashWorker(t *testing.T) {
	dbURL := os.Getenv(crashChildEnv)
	if dbURL == "" {
		t.Skip("the worker process of TestCrashRecovery; it runs only as that test's child")
	}
	ctx := context.Background()
	st, err := sqlstore.Open(ctx, dbURL)
	if err != nil {
		t.Fatal(err)
	}
	pool, err := pgxpool.New(ctx, dbURL)
	if err != nil {
		t.Fatal(err)
	}
	q, err := riverqueue.NewPostgres(pool, riverqueue.Config{Workers: 16, PollInterval: 50 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	svc := service(t, st, q, func(c *webhooks.Config) {
		c.PerEndpoint, c.SweepInterval, c.Timeout, c.Lease = 16, 500*time.Millisecond, 2*time.Second, 3*time.Second
	})
	ctx, cancel := context.WithTimeout(ctx, 3*time.Minute) // an orphan ends
	defer cancel()
	if err := svc.Run(ctx); err != nil {
		t.Fatal(err)
	}
}

// TestCrashRecovery publishes events, lets a worker process deliver some,
// kills it with SIGKILL while deliveries are in flight, restarts Postgres
// as a crash would, publishes more, and starts a new worker: every event
// must arrive (0 lost); repeats, recognised by webhook-id, are counted and
// reported. At-least-once delivery allows them, and a receiver dedupes by
// webhook-id.
func TestCrashRecovery(t *testing.T) {
	bin := os.Getenv("REVOPS_TEST_PG_BIN")
	if bin == "" {
		t.Skip("REVOPS_TEST_PG_BIN is not set: run through scripts/test, which names the PostgreSQL binaries this test starts (and restarts) a cluster of its own with")
	}
	pg := startCluster(t, bin)
	ctx := t.Context()
	f := newFixture(t, pg.url)
	rec := newReceiver(t, 15*time.Millisecond)
	pool, err := pgxpool.New(ctx, pg.url)
	if err != nil {
		t.Fatal(err)
	}
	q, err := riverqueue.NewPostgres(pool, riverqueue.Config{})
	q = migrated(t, q, err)
	publisher := service(t, f.store, q, nil)
	ep, err := publisher.CreateEndpoint(ctx, f.wid, webhooks.EndpointInput{URL: rec.URL, Events: []string{"*"}})
	if err != nil {
		t.Fatal(err)
	}
	rec.mu.Lock()
	rec.secret = ep.Secret
	rec.mu.Unlock()

	const before, after = 400, 100
	for i := range before {
		if _, err := publisher.Publish(ctx, f.wid, "post.created", map[string]int{"n": i}); err != nil {
			t.Fatal(err)
		}
	}
	pool.Close()
	f.store.Close()

	start := time.Now()
	worker := startWorker(t, pg.url)
	rec.waitFor(t, before/4, 60*time.Second)
	t.Logf("%v: %d arrived, killing the worker", time.Since(start), before/4)
	if err := worker.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	worker.Wait()
	atKill, _, _ := rec.counts()
	if atKill >= before {
		t.Fatalf("all %d events arrived before the kill; the test proves nothing", before)
	}
	pg.restart()

	// Publishing works after the restart, with fresh connections.
	st, err := sqlstore.Open(ctx, pg.url)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	pool, err = pgxpool.New(ctx, pg.url)
	if err != nil {
		t.Fatal(err)
	}
	defer pool.Close()
	q, err = riverqueue.NewPostgres(pool, riverqueue.Config{})
	if err != nil {
		t.Fatal(err)
	}
	publisher = service(t, st, q, nil)
	for i := range after {
		if _, err := publisher.Publish(ctx, f.wid, "post.created", map[string]int{"n": before + i}); err != nil {
			t.Fatal(err)
		}
	}

	t.Logf("%v: restarted Postgres, published %d more, starting a worker", time.Since(start), after)
	startWorker(t, pg.url)
	t.Cleanup(func() {
		if !t.Failed() {
			return
		}
		for _, q := range []string{"SELECT state, count(*) FROM river_job GROUP BY state",
			"SELECT status, locked_until IS NOT NULL, attempt, count(*) FROM revops_webhook_deliveries GROUP BY 1, 2, 3"} {
			pool, err := pgxpool.New(context.Background(), pg.url)
			if err != nil {
				t.Log(err)
				continue
			}
			defer pool.Close()
			rows, err := pool.Query(context.Background(), q)
			if err != nil {
				t.Log(err)
				continue
			}
			for rows.Next() {
				v, _ := rows.Values()
				t.Log(q, v)
			}
			rows.Close()
		}
	})
	rec.waitFor(t, before+after, 90*time.Second)
	t.Logf("%v: all arrived", time.Since(start))
	distinct, dups, bad := rec.counts()
	if bad != 0 {
		t.Errorf("%d deliveries failed signature verification", bad)
	}
	if distinct != before+after {
		t.Fatalf("%d distinct events delivered, want %d", distinct, before+after)
	}
	// Every delivery row ends as success.
	deadline := time.Now().Add(20 * time.Second)
	for {
		_, ok, err := publisher.ListDeliveries(ctx, f.wid, ep.ID, webhooks.StatusSuccess, core.ListParams{Page: 1, PerPage: 1})
		if err != nil {
			t.Fatal(err)
		}
		if ok == before+after {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d deliveries recorded as success, want %d", ok, before+after)
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Logf("crash recovery: %d events (%d published before the SIGKILL and Postgres restart, %d after); %d had arrived at the kill; all %d delivered, 0 lost, %d duplicate deliveries (same webhook-id)",
		before+after, before, after, atKill, distinct, dups)
}

// startWorker runs TestCrashWorker in a process of its own; it is killed
// when the test ends, if still running.
func startWorker(t *testing.T, dbURL string) *exec.Cmd {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^TestCrashWorker$", "-test.count=1", "-test.v")
	cmd.Env = append(os.Environ(), crashChildEnv+"="+dbURL)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cmd.Process.Kill()
		cmd.Wait()
		if t.Failed() || testing.Verbose() {
			t.Logf("worker %d output:\n%s", cmd.Process.Pid, out.String())
		}
	})
	return cmd
}
