package main

import (
	"context"
	"fmt"
	"runtime"
	"runtime/debug"
)

// version is set at link time with -ldflags "-X main.version=v1.2.3"; when
// empty, the module version from the build info is used.
var version = ""

func init() {
	register(command{name: "version", summary: "Print the version and build information", run: runVersion})
}

func runVersion(ctx context.Context, e *env, args []string) error {
	fs := e.flagSet("version")
	if err := fs.Parse(args); err != nil {
		return usageErr(err)
	}
	v, rev, modified := version, "", false
	if bi, ok := debug.ReadBuildInfo(); ok {
		if v == "" {
			v = bi.Main.Version
		}
		for _, s := range bi.Settings {
			switch s.Key {
			case "vcs.revision":
				rev = s.Value
			case "vcs.modified":
				modified = s.Value == "true"
			}
		}
	}
	if v == "" {
		v = "(devel)"
	}
	fmt.Fprintf(e.Stdout, "taxii-bridge %s\n", v)
	if rev != "" {
		if modified {
			rev += " (modified)"
		}
		fmt.Fprintf(e.Stdout, "revision %s\n", rev)
	} else {
		fmt.Fprintln(e.Stdout, "revision unknown (built without VCS information)")
	}
	fmt.Fprintf(e.Stdout, "%s %s/%s\n", runtime.Version(), runtime.GOOS, runtime.GOARCH)
	return nil
}
