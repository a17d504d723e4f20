package config

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"reflect"
	"sort"
	"strings"

	"go.yaml.in/yaml/v3"
)

// maxFileSize bounds how much of a configuration file is read.
const maxFileSize = 4 << 20

// ValidationError lists every problem found in a configuration, one
// "key.path: problem" per entry.
type ValidationError struct {
	Problems []string
}

func (e *ValidationError) Error() string {
	if len(e.Problems) == 1 {
		return "invalid configuration: " + e.Problems[0]
	}
	return "invalid configuration:\n  " + strings.Join(e.Problems, "\n  ")
}

// Load reads the file at path, applies the environment overrides read through
// getenv (nil means os.Getenv) and validates the result.
func Load(path string, getenv func(string) string) (*Config, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("read config: %w", err)
	}
	defer f.Close()
	cfg, err := Parse(f)
	if err != nil {
		return nil, fmt.Errorf("config %s: %w", path, err)
	}
	if getenv == nil {
		getenv = os.Getenv
	}
	cfg.ApplyEnv(getenv)
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("config %s: %w", path, err)
	}
	return cfg, nil
}

// Parse reads YAML over the defaults. It fails only on unreadable YAML:
// unknown keys and values of the wrong kind are recorded with their key paths
// and reported by Validate together with every other problem, so a single
// run names every bad key.
func Parse(r io.Reader) (*Config, error) {
	data, err := io.ReadAll(io.LimitReader(r, maxFileSize+1))
	if err != nil {
		return nil, fmt.Errorf("read config: %w", err)
	}
	if len(data) > maxFileSize {
		return nil, fmt.Errorf("config is larger than %d bytes", maxFileSize)
	}
	cfg := Default()
	if len(bytes.TrimSpace(data)) == 0 {
		return &cfg, nil
	}
	var root yaml.Node
	if err := yaml.Unmarshal(data, &root); err != nil {
		return nil, fmt.Errorf("parse YAML: %w", err)
	}
	var problems []string
	if len(root.Content) > 0 {
		checkKeys(root.Content[0], reflect.TypeOf(cfg), "", &problems)
	}
	// Lists replace their defaults rather than merging into them.
	cfg.Sync.IndicatorTypes, cfg.Sync.GroupTypes = nil, nil
	if err := root.Decode(&cfg); err != nil {
		var te *yaml.TypeError
		if !errors.As(err, &te) {
			return nil, fmt.Errorf("decode YAML: %w", err)
		}
		if len(problems) == 0 { // checkKeys found nothing: report the decoder's own words
			problems = te.Errors
		}
	}
	// storage.path has a default, so only the YAML tells whether it was
	// chosen; with postgres_url the default file is not used at all.
	cfg.storagePathSet = hasKey(&root, "storage", "path")
	if cfg.Storage.Postgres() && !cfg.storagePathSet {
		cfg.Storage.Path = ""
	}
	if cfg.Sync.IndicatorTypes == nil {
		cfg.Sync.IndicatorTypes = []string{"All"}
	}
	if cfg.Sync.GroupTypes == nil {
		cfg.Sync.GroupTypes = []string{"All"}
	}
	cfg.parseProblems = problems
	return &cfg, nil
}

// hasKey reports whether the document root sets the key at path.
func hasKey(root *yaml.Node, path ...string) bool {
	if len(root.Content) == 0 {
		return false
	}
	n := root.Content[0]
	for _, k := range path {
		if n.Kind == yaml.AliasNode && n.Alias != nil {
			n = n.Alias
		}
		if n.Kind != yaml.MappingNode {
			return false
		}
		var next *yaml.Node
		for i := 0; i+1 < len(n.Content); i += 2 {
			if n.Content[i].Value == k {
				next = n.Content[i+1]
			}
		}
		if next == nil {
			return false
		}
		n = next
	}
	return true
}

// checkKeys walks the YAML tree along the Go type and reports every key that
// has no field, with its full path and line.
func checkKeys(n *yaml.Node, t reflect.Type, path string, problems *[]string) {
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	if n.Kind == yaml.AliasNode && n.Alias != nil {
		n = n.Alias
	}
	switch {
	case t.Kind() == reflect.Struct && n.Kind == yaml.MappingNode:
		if isScalarType(t) {
			return
		}
		fields := yamlFields(t)
		for i := 0; i+1 < len(n.Content); i += 2 {
			k, v := n.Content[i], n.Content[i+1]
			key := join(path, k.Value)
			f, ok := fields[k.Value]
			if !ok {
				msg := fmt.Sprintf("%s: unknown key (line %d)", key, k.Line)
				if s := suggest(k.Value, fields); s != "" {
					msg += fmt.Sprintf("; did you mean %q?", s)
				}
				*problems = append(*problems, msg)
				continue
			}
			checkKeys(v, f, key, problems)
		}
	case t.Kind() == reflect.Slice && n.Kind == yaml.SequenceNode:
		for i, item := range n.Content {
			checkKeys(item, t.Elem(), fmt.Sprintf("%s[%d]", path, i), problems)
		}
	default:
		if want := kindProblem(n, t); want != "" {
			*problems = append(*problems, fmt.Sprintf("%s: want %s, got %q (line %d)", path, want, n.Value, n.Line))
		}
	}
}

// kindProblem says what n should have been when it cannot decode into t.
func kindProblem(n *yaml.Node, t reflect.Type) string {
	if n.Kind == yaml.ScalarNode && n.Tag == "!!null" {
		return ""
	}
	switch {
	case t.Kind() == reflect.Struct && !isScalarType(t):
		if n.Kind != yaml.MappingNode {
			return "a mapping of keys"
		}
	case t.Kind() == reflect.Slice:
		if n.Kind != yaml.SequenceNode {
			return "a list such as [a, b]"
		}
	case n.Kind != yaml.ScalarNode:
		return "a single value"
	case t.Kind() == reflect.Bool:
		if n.Tag != "!!bool" {
			return "true or false"
		}
	case t.Kind() >= reflect.Int && t.Kind() <= reflect.Int64:
		if n.Tag != "!!int" {
			return "a whole number"
		}
	case t.Kind() == reflect.Float64:
		if n.Tag != "!!int" && n.Tag != "!!float" {
			return "a number"
		}
	}
	return ""
}

func isScalarType(t reflect.Type) bool {
	return t == reflect.TypeOf(Duration{}) || t == reflect.TypeOf(TLP{})
}

func yamlFields(t reflect.Type) map[string]reflect.Type {
	m := make(map[string]reflect.Type, t.NumField())
	for i := 0; i < t.NumField(); i++ {
		f := t.Field(i)
		name, _, _ := strings.Cut(f.Tag.Get("yaml"), ",")
		if name == "" || name == "-" {
			continue
		}
		m[name] = f.Type
	}
	return m
}

// suggest returns the known key closest to k when it is a likely typo.
func suggest(k string, fields map[string]reflect.Type) string {
	best, bestD := "", 3
	names := make([]string, 0, len(fields))
	for name := range fields {
		names = append(names, name)
	}
	sort.Strings(names)
	for _, name := range names {
		if d := editDistance(strings.ToLower(k), name); d < bestD {
			best, bestD = name, d
		}
	}
	return best
}

func editDistance(a, b string) int {
	prev := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur := make([]int, len(b)+1)
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev = cur
	}
	return prev[len(b)]
}

func join(path, key string) string {
	if path == "" {
		return key
	}
	return path + "." + key
}

// Environment variables that override secrets (and the HMAC access id) in the file.
const (
	EnvAccessID     = "TC_ACCESS_ID"
	EnvSecretKey    = "TC_SECRET_KEY"
	EnvAPIToken     = "TC_API_TOKEN"
	EnvCursorSecret = "TAXII_BRIDGE_CURSOR_SECRET"
	// EnvPostgresPassword supplies the PostgreSQL password, so it can stay
	// out of the file and out of storage.postgres_url.
	EnvPostgresPassword = "TAXII_BRIDGE_POSTGRES_PASSWORD"
)

// ApplyEnv overrides credentials with the environment variables that are set
// and not empty, so secrets can stay out of the file.
func (c *Config) ApplyEnv(getenv func(string) string) {
	if v := getenv(EnvAccessID); v != "" {
		c.ThreatConnect.AccessID = v
	}
	if v := getenv(EnvSecretKey); v != "" {
		c.ThreatConnect.SecretKey = Secret(v)
	}
	if v := getenv(EnvAPIToken); v != "" {
		c.ThreatConnect.APIToken = Secret(v)
	}
	if v := getenv(EnvCursorSecret); v != "" {
		c.TAXII.CursorSecret = Secret(v)
	}
	if v := getenv(EnvPostgresPassword); v != "" {
		c.Storage.PostgresPassword = Secret(v)
	}
}
