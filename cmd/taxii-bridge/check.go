package main

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/taxii-bridge/taxii-bridge/config"
)

func init() {
	register(command{
		name:    "check",
		summary: "Validate the configuration and test ThreatConnect and the database (the feed's Test button)",
		run:     runCheck,
	})
}

// extraChecks run after the configuration is valid, in order; each prints its
// own lines ("ok   name: detail" / "FAIL name: problem") and returns an error when
// something failed. The ThreatConnect and database checks add themselves here.
var extraChecks []func(ctx context.Context, e *env, cfg *config.Config) error

func runCheck(ctx context.Context, e *env, args []string) error {
	fs := e.flagSet("check")
	path := configFlag(fs)
	configOnly := fs.Bool("config-only", false, "validate the configuration only; reach nothing")
	if err := fs.Parse(args); err != nil {
		return usageErr(err)
	}
	cfg, err := e.loadConfig(*path)
	if err != nil {
		return err
	}
	checkLine(e, true, "config", "valid")
	if *configOnly {
		return nil
	}
	var failed []string
	for _, c := range extraChecks {
		if err := c(ctx, e, cfg); err != nil {
			failed = append(failed, err.Error())
		}
	}
	if len(failed) > 0 {
		return errors.New("failed: " + strings.Join(failed, "; "))
	}
	return nil
}

// checkLine prints one check result in the common format.
func checkLine(e *env, ok bool, name, detail string) {
	mark := "ok  "
	if !ok {
		mark = "FAIL"
	}
	fmt.Fprintf(e.Stdout, "%s %-15s %s\n", mark, name, detail)
}
