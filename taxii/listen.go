package taxii

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"time"
)

// ServeOptions configures Serve.
type ServeOptions struct {
	// TLSCertFile and TLSKeyFile enable HTTPS when both are set (taxii21.md S-1.6, D-18).
	TLSCertFile, TLSKeyFile string
	// ShutdownTimeout bounds the graceful shutdown (default 10 s).
	ShutdownTimeout time.Duration
	// Log receives server errors (default slog.Default()).
	Log *slog.Logger
}

// TLSConfig is the server TLS configuration of taxii21.md D-18: TLS 1.2 or
// later, and for TLS 1.2 only ECDHE key exchange with AEAD ciphers (none of
// the RFC 7540 Appendix A suites, S-1.9). TLS 1.3 suites are fixed by Go and
// all AEAD; Go's server never accepts 0-RTT data (S-1.8).
func TLSConfig() *tls.Config {
	return &tls.Config{
		MinVersion: tls.VersionTLS12,
		CipherSuites: []uint16{
			tls.TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256,
			tls.TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256,
			tls.TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384,
			tls.TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384,
			tls.TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256,
			tls.TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256,
		},
	}
}

// MaxHeaderBytes bounds the request line and header block together (issue
// 14). It is above maxQueryBytes, so a query string the handler would take
// always gets that far, and a longer one gets a TAXII 400 from the handler
// as long as the whole head fits here.
const MaxHeaderBytes = 512 << 10

// NewHTTPServer wraps h in an http.Server with every timeout set, so a slow
// or stalled client cannot hold a connection forever. WriteTimeout allows a
// full 10,000-object page to a slow reader.
//
// Some requests are answered by net/http before the handler runs, so their
// answer is net/http's and not a TAXII error resource: the status line and
// the same text as body, Content-Type text/plain; charset=utf-8, and the
// connection closed. They are: a request line and header block longer than
// MaxHeaderBytes (net/http allows 4 KiB of slack) — 431 Request Header
// Fields Too Large; a malformed request line, header line or Host header,
// or an HTTP/1.1 request without Host — 400 Bad Request (possibly followed
// by the reason); an unsupported HTTP version — 505; an unsupported
// Transfer-Encoding — 501. A client that sends no complete head within
// ReadHeaderTimeout is disconnected without an answer.
func NewHTTPServer(h http.Handler, log *slog.Logger) *http.Server {
	if log == nil {
		log = slog.Default()
	}
	return &http.Server{
		Handler:           h,
		ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout:       60 * time.Second,
		WriteTimeout:      120 * time.Second,
		IdleTimeout:       120 * time.Second,
		MaxHeaderBytes:    MaxHeaderBytes,
		ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelWarn),
	}
}

// Serve serves h on ln until ctx is cancelled, then shuts down gracefully:
// it stops accepting, lets in-flight requests finish within the shutdown
// timeout, and returns nil. A listener or TLS failure is returned at once.
func Serve(ctx context.Context, ln net.Listener, h http.Handler, opt ServeOptions) error {
	if opt.Log == nil {
		opt.Log = slog.Default()
	}
	if opt.ShutdownTimeout <= 0 {
		opt.ShutdownTimeout = 10 * time.Second
	}
	srv := NewHTTPServer(h, opt.Log)
	useTLS := opt.TLSCertFile != "" || opt.TLSKeyFile != ""
	if useTLS {
		if opt.TLSCertFile == "" || opt.TLSKeyFile == "" {
			_ = ln.Close()
			return errors.New("tls: both the certificate and the key file are needed")
		}
		cert, err := tls.LoadX509KeyPair(opt.TLSCertFile, opt.TLSKeyFile)
		if err != nil {
			_ = ln.Close()
			return fmt.Errorf("load TLS key pair: %w", err)
		}
		srv.TLSConfig = TLSConfig()
		srv.TLSConfig.Certificates = []tls.Certificate{cert}
	}
	errc := make(chan error, 1)
	go func() {
		var err error
		if useTLS {
			err = srv.ServeTLS(ln, "", "")
		} else {
			err = srv.Serve(ln)
		}
		errc <- err
	}()
	select {
	case err := <-errc:
		if errors.Is(err, http.ErrServerClosed) {
			return nil
		}
		return fmt.Errorf("serve %s: %w", ln.Addr(), err)
	case <-ctx.Done():
	}
	sctx, cancel := context.WithTimeout(context.Background(), opt.ShutdownTimeout)
	defer cancel()
	if err := srv.Shutdown(sctx); err != nil {
		_ = srv.Close()
		<-errc
		return fmt.Errorf("shut down: %w", err)
	}
	<-errc
	return nil
}

// ListenAndServe listens on addr (TCP) and calls Serve.
func ListenAndServe(ctx context.Context, addr string, h http.Handler, opt ServeOptions) error {
	var lc net.ListenConfig
	ln, err := lc.Listen(ctx, "tcp", addr)
	if err != nil {
		return fmt.Errorf("listen on %s: %w", addr, err)
	}
	return Serve(ctx, ln, h, opt)
}
