// Command server is the reference host app: it mounts revops at /api/v1,
// adds its own posts resource behind the revops pipeline, and keeps its data
// in SQLite (./revops.db) unless given a postgres:// URL.
//
//	go run ./examples/server                     # 127.0.0.1:8080, ./revops.db
//	go run ./examples/server -addr :9000 -db postgres://localhost/revops
package main

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/revopsdev/revops"
	"github.com/revopsdev/revops/adapters/riverqueue"
	"github.com/revopsdev/revops/adapters/sqlstore"
	"github.com/revopsdev/revops/adapters/stripe"
	"github.com/revopsdev/revops/billing"
	"github.com/revopsdev/revops/login"
	"github.com/revopsdev/revops/webhooks"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.Args[1:], os.Stdout, nil); err != nil {
		fmt.Fprintln(os.Stderr, "server:", err)
		os.Exit(1)
	}
}

// writeSecret writes s to path readable by the owner only, also when the
// file already exists with wider permissions.
func writeSecret(path, s string) error {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o600)
	if err != nil {
		return err
	}
	if err := f.Chmod(0o600); err != nil {
		f.Close()
		return err
	}
	if _, err := f.WriteString(s); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

// redact hides a password in a database URL before it is logged.
func redact(s string) string {
	if u, err := url.Parse(s); err == nil && u.User != nil {
		return u.Redacted()
	}
	return s
}

// stripeProvider is the Stripe payment provider when REVOPS_STRIPE_SECRET_KEY
// is set (with REVOPS_STRIPE_WEBHOOK_SECRET and
// REVOPS_STRIPE_PRICES=pro=price_…,agency=price_…), else nil: billing off.
// REVOPS_STRIPE_SUCCESS_URL, _CANCEL_URL, _RETURN_URL and _API_URL
// (stripe-mock) are optional.
func stripeProvider() (billing.Provider, error) {
	if os.Getenv("REVOPS_STRIPE_SECRET_KEY") == "" {
		return nil, nil
	}
	prices := map[string]string{}
	for _, kv := range strings.Split(os.Getenv("REVOPS_STRIPE_PRICES"), ",") {
		if tier, price, ok := strings.Cut(strings.TrimSpace(kv), "="); ok {
			prices[tier] = price
		} else if kv != "" {
			return nil, fmt.Errorf("REVOPS_STRIPE_PRICES: %q is not tier=price_id", kv)
		}
	}
	prov, err := stripe.New(stripe.Config{SecretKey: os.Getenv("REVOPS_STRIPE_SECRET_KEY"), WebhookSecret: os.Getenv("REVOPS_STRIPE_WEBHOOK_SECRET"),
		Prices: prices, SuccessURL: os.Getenv("REVOPS_STRIPE_SUCCESS_URL"), CancelURL: os.Getenv("REVOPS_STRIPE_CANCEL_URL"),
		ReturnURL: os.Getenv("REVOPS_STRIPE_RETURN_URL"), APIBaseURL: os.Getenv("REVOPS_STRIPE_API_URL")})
	if err != nil {
		return nil, err
	}
	return prov, nil
}

// generatePassword returns 144 random bits, base64url: 24 characters.
func generatePassword() string {
	b := make([]byte, 18)
	rand.Read(b)
	return base64.RawURLEncoding.EncodeToString(b)
}

func env(name, def string) string {
	if v := os.Getenv(name); v != "" {
		return v
	}
	return def
}

// run serves until ctx ends. ready, if set, receives the listening address.
func run(ctx context.Context, args []string, out io.Writer, ready func(addr string)) error {
	fs := flag.NewFlagSet("server", flag.ContinueOnError)
	fs.SetOutput(out)
	addr := fs.String("addr", env("REVOPS_ADDR", "127.0.0.1:8080"), "listen address (env REVOPS_ADDR)")
	dbURL := fs.String("db", env("REVOPS_DATABASE_URL", "./revops.db"), "database: a SQLite path or sqlite: URL, or postgres://… (env REVOPS_DATABASE_URL)")
	keyFile := fs.String("bootstrap-key-file", "", "on first start, also write the bootstrap key to this file (mode 0600)")
	adminPassword := fs.String("admin-password", env("REVOPS_ADMIN_PASSWORD", ""),
		"on first start, the password of admin@localhost (env REVOPS_ADMIN_PASSWORD); empty: one is generated and printed once")
	upgradeURL := fs.String("upgrade-url", env("REVOPS_UPGRADE_URL", ""),
		"the upgrade_url of feature_limit_reached answers (env REVOPS_UPGRADE_URL); empty: this server's /upgrade page")
	plainHTTP := fs.Bool("sessions-plain-http", env("REVOPS_SESSIONS_PLAIN_HTTP", "") == "true",
		"session cookies without Secure, for serving over plain HTTP in development only (env REVOPS_SESSIONS_PLAIN_HTTP=true)")
	allowPrivate := fs.Bool("webhooks-allow-private", env("REVOPS_WEBHOOKS_ALLOW_PRIVATE", "") == "true",
		"let webhook endpoints use http and private or loopback addresses, for development only (env REVOPS_WEBHOOKS_ALLOW_PRIVATE=true)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	log := slog.New(slog.NewTextHandler(out, nil))
	if *adminPassword != "" {
		// Checked before anything is created: a bootstrap cut short by a
		// bad password would hide its key.
		if err := login.CheckPassword(*adminPassword); err != nil {
			return fmt.Errorf("-admin-password / REVOPS_ADMIN_PASSWORD: %w", err)
		}
	}

	store, err := sqlstore.Open(ctx, *dbURL)
	if err != nil {
		return err
	}
	defer store.Close()
	if err := store.Migrate(ctx); err != nil {
		return fmt.Errorf("migrate: %w", err)
	}
	posts, err := newPosts(ctx, store)
	if err != nil {
		return err
	}

	cfg := revops.Config{Store: store, Logger: log, Resources: []string{"posts"}, Title: "revops reference server",
		Events: postEvents, Webhooks: webhooks.Config{AllowPrivate: *allowPrivate}, Sessions: revops.SessionsConfig{PlainHTTP: *plainHTTP}}
	if store.Dialect() == sqlstore.DialectPostgres {
		// Several instances may share this database: share their buckets,
		// and deliver webhooks through River's durable queue in it.
		cfg.Limiter = store.Limiter(nil)
		pool, err := pgxpool.New(ctx, *dbURL)
		if err != nil {
			return fmt.Errorf("webhook queue: %w", err)
		}
		defer pool.Close()
		q, err := riverqueue.NewPostgres(pool, riverqueue.Config{Logger: log})
		if err != nil {
			return err
		}
		if err := q.Migrate(ctx); err != nil {
			return err
		}
		cfg.Webhooks.Queue = q
	}
	if cfg.Billing.Provider, err = stripeProvider(); err != nil {
		return err
	}
	cfg.Billing.UpgradeURL = *upgradeURL
	if cfg.Billing.UpgradeURL == "" {
		cfg.Billing.UpgradeURL = "http://" + reachable(*addr) + "/upgrade"
	}
	if cfg.Billing.Provider == nil {
		log.Info("billing disabled: billing routes answer {\"billingEnabled\": false} (set REVOPS_STRIPE_SECRET_KEY to enable Stripe)")
	}
	p, err := revops.New(cfg)
	if err != nil {
		return err
	}
	posts.register(p)

	boot, err := p.Bootstrap(ctx, "admin@localhost", "Default")
	if err != nil {
		return fmt.Errorf("bootstrap: %w", err)
	}
	if boot != nil {
		if boot.Resumed {
			fmt.Fprintf(out, "\n%s had no personal key: issued a new one for workspace %q (id %d).\n", boot.User.Email, boot.Workspace.Name, boot.Workspace.ID)
		} else {
			fmt.Fprintf(out, "\nCreated workspace %q (id %d) and owner %s.\n", boot.Workspace.Name, boot.Workspace.ID, boot.User.Email)
		}
		fmt.Fprintf(out, "Bootstrap API key (shown once, scope *):\n\n    %s\n\nTry: curl -H 'Authorization: Bearer %s' http://%s/api/v1/workspaces\n\n",
			boot.Key, boot.Key, *addr)
		// The password is the first start's: a later start that only
		// issues a key leaves the one in use alone.
		if !boot.HasPassword {
			password, generated := *adminPassword, *adminPassword == ""
			if generated {
				password = generatePassword()
			}
			if err := p.SetPassword(ctx, boot.User.ID, password); err != nil {
				return fmt.Errorf("-admin-password / REVOPS_ADMIN_PASSWORD: %w", err)
			}
			if generated {
				fmt.Fprintf(out, "Password of %s (generated, shown once; sign in with POST /api/v1/auth/login):\n\n    %s\n\n", boot.User.Email, password)
			} else {
				fmt.Fprintf(out, "Password of %s: the one given by -admin-password / REVOPS_ADMIN_PASSWORD.\n\n", boot.User.Email)
			}
		}
		if *keyFile != "" {
			if err := writeSecret(*keyFile, boot.Key+"\n"); err != nil {
				return fmt.Errorf("writing -bootstrap-key-file: %w", err)
			}
		}
	}

	mux := http.NewServeMux()
	mux.Handle("/api/v1/", http.StripPrefix("/api/v1", p.Handler()))
	// A plain net/http handler behind the whole pipeline (auth, workspace,
	// scope, rate limit, idempotency) in one line; RequireFeature counts
	// the call.
	mux.Handle("GET /api/v1/posts/export.csv", p.Protect("posts:read", p.RequireFeature("api_calls", 1, posts.exportCSV(p))))
	mux.HandleFunc("GET /upgrade", upgradePage(cfg.Billing.Provider != nil))
	// The signing keys where JWT libraries look first, besides /api/v1.
	mux.Handle("GET /.well-known/jwks.json", p.Handler())
	mux.HandleFunc("GET /api/healthz", func(w http.ResponseWriter, r *http.Request) {
		ctx, cancel := context.WithTimeout(r.Context(), 2*time.Second)
		defer cancel()
		if err := store.DB().PingContext(ctx); err != nil {
			revops.WriteJSON(w, http.StatusServiceUnavailable, map[string]string{"status": "unavailable"})
			return
		}
		revops.WriteJSON(w, http.StatusOK, map[string]string{"status": "ok"})
	})

	ln, err := net.Listen("tcp", *addr)
	if err != nil {
		return err
	}
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	log.Info("listening", "addr", ln.Addr().String(), "db", redact(*dbURL))
	if ready != nil {
		ready(ln.Addr().String())
	}

	bg := make(chan error, 1)
	go func() { bg <- p.Start(ctx) }()
	serveErr := make(chan error, 1)
	go func() { serveErr <- srv.Serve(ln) }()

	select {
	case err := <-serveErr:
		return err
	case <-ctx.Done():
	}
	log.Info("shutting down")
	sctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	err = srv.Shutdown(sctx)
	if serr := p.Stop(sctx); serr != nil {
		err = errors.Join(err, serr)
	}
	<-bg
	return err
}

// upgradePage is where the upgrade_url of a feature_limit_reached answer
// leads when no -upgrade-url is given: it says how to change plans here.
func upgradePage(billing bool) http.HandlerFunc {
	text := "Billing is disabled on this server (self-hosted): its operator sets each workspace's tier.\n"
	if billing {
		text = "To upgrade a workspace, an owner or admin asks for a checkout page:\n\n" +
			"    POST /api/v1/workspaces/{id}/billing/checkout  {\"tier\": \"pro\"}\n\n" +
			"and follows the url in the answer. GET /api/v1/workspaces/{id}/billing/status shows the current plan.\n"
	}
	return func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		io.WriteString(w, text)
	}
}

// reachable is a listen address as a client on this machine reaches it: a
// wildcard or missing host becomes localhost.
func reachable(addr string) string {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return addr
	}
	if ip := net.ParseIP(host); host == "" || ip != nil && ip.IsUnspecified() {
		host = "localhost"
	}
	return net.JoinHostPort(host, port)
}
