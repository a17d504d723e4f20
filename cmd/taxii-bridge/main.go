// Command taxii-bridge pulls threat intelligence out of ThreatConnect and
// publishes it as STIX 2.1 over TAXII 2.1.
//
// main is thin: it wires signals to a context and calls run, which parses the
// global flags, picks the subcommand and maps its error to an exit code (0 ok,
// 1 runtime failure, 2 usage or configuration error). Each subcommand lives in
// its own file and registers itself with register from an init function.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"slices"
	"sort"
	"strings"
	"syscall"

	"github.com/taxii-bridge/taxii-bridge/config"
)

// Exit codes.
const (
	exitOK      = 0
	exitFailure = 1
	exitUsage   = 2
)

// defaultConfigPath is used by commands that take -config when the flag is
// not given and the file exists.
const defaultConfigPath = "taxii-bridge.yaml"

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := run(ctx, os.Args[1:], os.Stdin, os.Stdout, os.Stderr, os.Getenv)
	stop()
	os.Exit(code)
}

// command is one subcommand.
type command struct {
	name    string
	summary string
	run     func(ctx context.Context, e *env, args []string) error
}

var commands = map[string]command{}

// register adds a subcommand; it is called from init functions.
func register(c command) {
	if _, dup := commands[c.name]; dup {
		panic("taxii-bridge: command registered twice: " + c.name)
	}
	commands[c.name] = c
}

// helpOrder is the order of DESIGN.md §3; commands not listed follow alphabetically.
var helpOrder = []string{"demo", "serve", "sync", "check", "tc-get-indicators", "tc-get-owners", "export",
	"migrate", "tc-simulator", "hash-password", "version", "help"}

// env is what a subcommand may touch of the outside world.
type env struct {
	Stdin          io.Reader
	Stdout, Stderr io.Writer
	Getenv         func(string) string
	Log            *slog.Logger
}

// usageError marks an error as the user's: wrong flags, arguments or configuration (exit 2).
type usageError struct{ err error }

func (u usageError) Error() string { return u.err.Error() }
func (u usageError) Unwrap() error { return u.err }

// usageErrorf returns a usage error (exit code 2).
func usageErrorf(format string, args ...any) error {
	return usageError{fmt.Errorf(format, args...)}
}

// usageErr wraps err as a usage error (exit code 2).
func usageErr(err error) error { return usageError{err} }

// flagSet returns a flag set for the named subcommand that reports to Stderr
// instead of exiting.
func (e *env) flagSet(name string) *flag.FlagSet {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(e.Stderr)
	fs.Usage = func() {
		c := commands[name]
		fmt.Fprintf(e.Stderr, "usage: taxii-bridge %s [flags]\n\n%s.\n", name, c.summary)
		var n int
		fs.VisitAll(func(*flag.Flag) { n++ })
		if n > 0 {
			fmt.Fprintln(e.Stderr, "\nflags:")
			fs.PrintDefaults()
		}
	}
	return fs
}

// configFlag adds the -config flag every configured command takes.
func configFlag(fs *flag.FlagSet) *string {
	return fs.String("config", "", "configuration `file` (default "+defaultConfigPath+" when it exists)")
}

// loadConfig reads, overrides from the environment and validates the
// configuration. An empty path means taxii-bridge.yaml when that exists.
// Problems with the file are usage errors (exit 2).
func (e *env) loadConfig(path string) (*config.Config, error) {
	if path == "" {
		if _, err := os.Stat(defaultConfigPath); err != nil {
			return nil, usageErrorf("no configuration: pass -config FILE (or create %s; see config.example.yaml)", defaultConfigPath)
		}
		path = defaultConfigPath
	}
	cfg, err := config.Load(path, e.Getenv)
	if err != nil {
		return nil, usageErr(err)
	}
	return cfg, nil
}

// run is the whole program behind main, testable with in-memory streams.
func run(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer, getenv func(string) string) int {
	e := &env{Stdin: stdin, Stdout: stdout, Stderr: stderr, Getenv: getenv}
	global := flag.NewFlagSet("taxii-bridge", flag.ContinueOnError)
	global.SetOutput(stderr)
	logLevel := global.String("log-level", "info", "log `level`: debug, info, warn or error")
	logFormat := global.String("log-format", "", "log `format`: text or json")
	global.Usage = func() { printHelp(stderr) }
	if err := global.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return exitOK
		}
		return exitUsage
	}
	log, err := newLogger(stderr, *logLevel, *logFormat)
	if err != nil {
		fmt.Fprintln(stderr, "taxii-bridge:", err)
		return exitUsage
	}
	e.Log = log

	rest := global.Args()
	if len(rest) == 0 {
		printHelp(stderr)
		return exitUsage
	}
	name := rest[0]
	c, ok := commands[name]
	if !ok {
		fmt.Fprintf(stderr, "taxii-bridge: unknown command %q\n\n", name)
		printHelp(stderr)
		return exitUsage
	}
	err = c.run(ctx, e, rest[1:])
	switch {
	case err == nil:
		return exitOK
	case errors.Is(err, flag.ErrHelp):
		return exitOK
	}
	var ue usageError
	if errors.As(err, &ue) {
		fmt.Fprintf(stderr, "taxii-bridge %s: %v\n", name, err)
		return exitUsage
	}
	fmt.Fprintf(stderr, "taxii-bridge %s: %v\n", name, err)
	return exitFailure
}

func init() {
	register(command{
		name:    "help",
		summary: "List the commands, or show one command's flags",
		run: func(ctx context.Context, e *env, args []string) error {
			if len(args) == 1 {
				if _, ok := commands[args[0]]; ok && args[0] != "help" {
					return commands[args[0]].run(ctx, e, []string{"-h"})
				}
				return usageErrorf("unknown command %q", args[0])
			}
			printHelp(e.Stdout)
			return nil
		},
	})
}

func printHelp(w io.Writer) {
	fmt.Fprint(w, `taxii-bridge publishes ThreatConnect intelligence as STIX 2.1 over TAXII 2.1.

usage: taxii-bridge [-log-level LEVEL] [-log-format text|json] <command> [flags]

commands:
`)
	names := make([]string, 0, len(commands))
	for n := range commands {
		names = append(names, n)
	}
	sort.Slice(names, func(i, j int) bool {
		a, b := slices.Index(helpOrder, names[i]), slices.Index(helpOrder, names[j])
		if a < 0 {
			a = len(helpOrder)
		}
		if b < 0 {
			b = len(helpOrder)
		}
		if a != b {
			return a < b
		}
		return names[i] < names[j]
	})
	width := 0
	for _, n := range names {
		width = max(width, len(n))
	}
	for _, n := range names {
		fmt.Fprintf(w, "  %-*s  %s\n", width, n, commands[n].summary)
	}
	fmt.Fprint(w, "\nRun 'taxii-bridge <command> -h' for a command's flags.\n")
}

func newLogger(w io.Writer, level, format string) (*slog.Logger, error) {
	var lv slog.Level
	if err := lv.UnmarshalText([]byte(strings.ToUpper(level))); err != nil {
		return nil, fmt.Errorf("-log-level: want debug, info, warn or error, got %q", level)
	}
	opts := &slog.HandlerOptions{Level: lv}
	switch format {
	case "", "text":
		return slog.New(slog.NewTextHandler(w, opts)), nil
	case "json":
		return slog.New(slog.NewJSONHandler(w, opts)), nil
	}
	return nil, fmt.Errorf("-log-format: want text or json, got %q", format)
}

func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	if !ok {
		return false
	}
	st, err := f.Stat()
	return err == nil && st.Mode()&os.ModeCharDevice != 0
}
