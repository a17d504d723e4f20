package main

import (
	"context"
	"fmt"
	"runtime"
	"runtime/debug"
)

// version is set at link time with -ldflags "-X main.version=v1.2.3"; when
// empty, the module version from the build info is used. revision may be
// set the same way (-X main.revision=...) for builds made without VCS
// stamping (GOFLAGS=-buildvcs=false, or a source tarball).
var (
	version  = ""
	revision = ""
)

func init() {
	register(command{name: "version", summary: "Print the version and build information", run: runVersion})
}

// buildVersion is what the binary knows about its build.
type buildVersion struct {
	version  string
	revision string // "" when unknown
	modified bool
	time     string
}

// readBuild reads the version, and the VCS revision that `go build` stamps
// into binaries built from a checkout (debug.BuildInfo vcs.revision,
// vcs.modified, vcs.time).
func readBuild(bi *debug.BuildInfo, ok bool) buildVersion {
	b := buildVersion{version: version, revision: revision}
	if ok {
		if b.version == "" {
			b.version = bi.Main.Version
		}
		for _, s := range bi.Settings {
			switch s.Key {
			case "vcs.revision":
				if b.revision == "" {
					b.revision = s.Value
				}
			case "vcs.modified":
				b.modified = s.Value == "true"
			case "vcs.time":
				b.time = s.Value
			}
		}
	}
	if b.version == "" {
		b.version = "(devel)"
	}
	return b
}

// versionLine is the one-line version for logs and the status page.
func versionLine() string {
	b := readBuild(debug.ReadBuildInfo())
	s := "taxii-bridge " + b.version
	if b.revision != "" {
		s += " (" + shortRev(b.revision)
		if b.modified {
			s += ", modified"
		}
		s += ")"
	}
	return s
}

func shortRev(r string) string {
	if len(r) > 12 {
		return r[:12]
	}
	return r
}

func runVersion(ctx context.Context, e *env, args []string) error {
	fs := e.flagSet("version")
	if err := fs.Parse(args); err != nil {
		return usageErr(err)
	}
	printVersion(e, readBuild(debug.ReadBuildInfo()))
	return nil
}

func printVersion(e *env, b buildVersion) {
	fmt.Fprintf(e.Stdout, "taxii-bridge %s\n", b.version)
	if b.revision != "" {
		rev := b.revision
		if b.modified {
			rev += " (modified)"
		}
		if b.time != "" {
			rev += " " + b.time
		}
		fmt.Fprintf(e.Stdout, "revision %s\n", rev)
	} else {
		fmt.Fprintln(e.Stdout, "revision unknown (built without VCS information: GOFLAGS=-buildvcs=false, or not from a git checkout; -ldflags \"-X main.revision=...\" sets it)")
	}
	fmt.Fprintf(e.Stdout, "%s %s/%s\n", runtime.Version(), runtime.GOOS, runtime.GOARCH)
}
