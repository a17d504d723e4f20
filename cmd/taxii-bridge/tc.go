package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"slices"
	"strconv"
	"strings"
	"text/tabwriter"
	"unicode"

	"github.com/taxii-bridge/taxii-bridge/tcsync/tcapi"
)

func init() {
	register(command{
		name:    "tc-get-indicators",
		summary: "List ThreatConnect indicators with the seed feed's filters (-owners -limit -offset -tql -indicator-type -active-indicators -confidence -threat-assess-score)",
		run:     runTCGetIndicators,
	})
	register(command{
		name:    "tc-get-owners",
		summary: "List the ThreatConnect owners the credentials can read",
		run:     runTCGetOwners,
	})
}

// splitList splits a comma-separated flag value, trimming blanks.
func splitList(s string) []string {
	var out []string
	for _, v := range strings.Split(s, ",") {
		if v = strings.TrimSpace(v); v != "" {
			out = append(out, v)
		}
	}
	return out
}

// indicatorFields are the expansions tc-get-indicators asks for: enough for
// the table, the JSON and the STIX mapping.
var indicatorFields = []string{"tags", "securityLabels", "attributes", "threatAssess", "associatedGroups"}

func runTCGetIndicators(ctx context.Context, e *env, args []string) error {
	fs := e.flagSet("tc-get-indicators")
	path := configFlag(fs)
	owners := fs.String("owners", "", "comma-separated owner `names`, or * for every readable owner (default: sync.owners; empty there = the account's own organization, as the seed)")
	limit := fs.Int("limit", 50, "maximum number of indicators to print")
	offset := fs.Int("offset", 0, "index of the first indicator (resultStart)")
	tql := fs.String("tql", "", "ThreatConnect Query Language filter; overrides every other filter flag")
	types := fs.String("indicator-type", "", "comma-separated indicator `types` (All, Address, EmailAddress, File, Host, URL, ASN, CIDR, Mutex, Registry Key, …)")
	active := fs.Bool("active-indicators", true, "only active indicators; false returns active and inactive ones")
	confidence := fs.Int("confidence", 0, "only indicators with a confidence of at least this (0–100; 0 = any)")
	score := fs.Int("threat-assess-score", 0, "only indicators with a ThreatAssess score of at least this (0–1000; 0 = any)")
	format := fs.String("format", "table", "output `format`: table, json or stix")
	if err := fs.Parse(args); err != nil {
		return usageErr(err)
	}
	if fs.NArg() > 0 {
		return usageErrorf("tc-get-indicators: unexpected argument %q", fs.Arg(0))
	}
	switch {
	case *limit < 1:
		return usageErrorf("-limit must be at least 1, got %d", *limit)
	case *offset < 0:
		return usageErrorf("-offset must not be negative, got %d", *offset)
	case *confidence < 0 || *confidence > 100:
		return usageErrorf("-confidence must be 0–100, got %d", *confidence)
	case *score < 0 || *score > 1000:
		return usageErrorf("-threat-assess-score must be 0–1000, got %d", *score)
	}
	if *format != "table" && *format != "json" && *format != "stix" {
		return usageErrorf("-format must be table, json or stix, got %q", *format)
	}
	cfg, err := e.loadConfig(*path)
	if err != nil {
		return err
	}
	f := tcapi.Filter{
		IndicatorTypes:       splitList(*types),
		ActiveOnly:           *active,
		MinConfidence:        *confidence,
		MinThreatAssessScore: *score,
		UserTQL:              *tql,
	}
	for _, t := range f.IndicatorTypes {
		if !strings.EqualFold(t, "All") && !slices.Contains(tcapi.IndicatorTypes(), t) {
			e.Log.Warn("unknown indicator type; sending it as given", "type", t)
		}
	}
	client, err := newTCClient(cfg, e.Log)
	if err != nil {
		return err
	}
	want := cfg.Sync.Owners
	if *owners != "" {
		want = splitList(*owners)
	}
	if !slices.Contains(want, tcapi.AllOwners) && len(want) > 0 {
		f.Owners = want
	} else if len(want) == 0 {
		// the seed: "If not specified will retrieve only indicators owned by the account"
		visible, err := client.Owners(ctx)
		if err != nil {
			return err
		}
		if f.Owners, err = tcapi.OwnerScope(nil, visible); err != nil {
			return usageErr(err)
		}
	}
	q := tcapi.Query{
		TQL:          f.IndicatorTQL(),
		Fields:       indicatorFields,
		Start:        *offset,
		Limit:        *limit,
		PageSize:     min(*limit, tcapi.MaxPageSize),
		OffsetPaging: true, // the seed's -offset is a resultStart
	}
	if *format == "json" {
		// Streamed page by page: a large -limit holds one page, not all.
		arr := newJSONArrayWriter(e.Stdout)
		err := client.Indicators(ctx, q, func(p []tcapi.Indicator) error {
			for i := range p {
				if err := arr.add(p[i]); err != nil {
					return err
				}
			}
			return nil
		})
		if err != nil {
			return err
		}
		return arr.close()
	}
	indicators := []tcapi.Indicator{}
	err = client.Indicators(ctx, q, func(p []tcapi.Indicator) error {
		indicators = append(indicators, p...)
		return nil
	})
	if err != nil {
		return err
	}
	switch *format {
	case "stix":
		if err := writeIndicatorBundle(e.Stdout, cfg, indicators); err != nil {
			return fmt.Errorf("map to stix: %w", err)
		}
		return nil
	}
	return writeIndicatorTable(e.Stdout, indicators)
}

func runTCGetOwners(ctx context.Context, e *env, args []string) error {
	fs := e.flagSet("tc-get-owners")
	path := configFlag(fs)
	format := fs.String("format", "table", "output `format`: table or json")
	if err := fs.Parse(args); err != nil {
		return usageErr(err)
	}
	if fs.NArg() > 0 {
		return usageErrorf("tc-get-owners: unexpected argument %q", fs.Arg(0))
	}
	if *format != "table" && *format != "json" {
		return usageErrorf("-format must be table or json, got %q", *format)
	}
	cfg, err := e.loadConfig(*path)
	if err != nil {
		return err
	}
	client, err := newTCClient(cfg, e.Log)
	if err != nil {
		return err
	}
	owners, err := client.Owners(ctx)
	if err != nil {
		return err
	}
	if owners == nil {
		owners = []tcapi.Owner{}
	}
	if *format == "json" {
		return writeJSON(e.Stdout, owners)
	}
	tw := tabwriter.NewWriter(e.Stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "ID\tNAME\tTYPE")
	for _, o := range owners {
		fmt.Fprintf(tw, "%d\t%s\t%s\n", o.ID, cell(o.Name, 60), cell(o.Type, 20))
	}
	return tw.Flush()
}

// jsonArrayWriter writes a JSON array an element at a time, formatted as
// writeJSON formats the whole array.
type jsonArrayWriter struct {
	w io.Writer
	n int
}

func newJSONArrayWriter(w io.Writer) *jsonArrayWriter { return &jsonArrayWriter{w: w} }

func (a *jsonArrayWriter) add(v any) error {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetIndent("  ", "  ")
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return err
	}
	sep := ",\n  "
	if a.n == 0 {
		sep = "[\n  "
	}
	a.n++
	_, err := io.WriteString(a.w, sep+strings.TrimSuffix(buf.String(), "\n"))
	return err
}

func (a *jsonArrayWriter) close() error {
	end := "\n]\n"
	if a.n == 0 {
		end = "[]\n"
	}
	_, err := io.WriteString(a.w, end)
	return err
}

func writeJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	enc.SetEscapeHTML(false)
	return enc.Encode(v)
}

func writeIndicatorTable(w io.Writer, indicators []tcapi.Indicator) error {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "ID\tTYPE\tVALUE\tOWNER\tRATING\tCONF\tTA SCORE\tACTIVE\tTLP\tTAGS\tLAST MODIFIED")
	for _, in := range indicators {
		var labels, tags []string
		for _, l := range in.SecurityLabels.Data {
			labels = append(labels, l.Name)
		}
		for _, t := range in.Tags.Data {
			tags = append(tags, t.Name)
		}
		fmt.Fprintf(tw, "%d\t%s\t%s\t%s\t%s\t%s\t%s\t%t\t%s\t%s\t%s\n",
			in.ID, cell(in.Type, 16), cell(in.Value(), 64), cell(in.OwnerName, 30),
			optFloat(in.Rating), optInt(in.Confidence), optInt(in.ThreatAssessScore), in.Active,
			cell(strings.Join(labels, ","), 30), cell(strings.Join(tags, ","), 40),
			in.LastModified.UTC().Format("2006-01-02T15:04:05Z"))
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	_, err := fmt.Fprintf(w, "%d indicators\n", len(indicators))
	return err
}

func optInt(p *int) string {
	if p == nil {
		return "-"
	}
	return strconv.Itoa(*p)
}

func optFloat(p *float64) string {
	if p == nil {
		return "-"
	}
	return strconv.FormatFloat(*p, 'f', -1, 64)
}

// cell makes a value safe and readable in a terminal table: control
// characters, tabs, newlines and bidirectional overrides are escaped (a
// hostile value cannot move the cursor or reorder the line), and long values
// are cut to max runes with an ellipsis.
func cell(s string, max int) string {
	var b strings.Builder
	n := 0
	for _, r := range s { // invalid UTF-8 arrives as U+FFFD, which is harmless
		if n >= max {
			b.WriteString("…")
			break
		}
		switch {
		case r == '\\':
			b.WriteString(`\\`)
		case unicode.IsControl(r) || unicode.Is(unicode.Bidi_Control, r) || r == '\u2028' || r == '\u2029':
			q := strconv.QuoteRune(r)
			b.WriteString(q[1 : len(q)-1])
		default:
			b.WriteRune(r)
		}
		n++
	}
	if b.Len() == 0 {
		return "-"
	}
	return b.String()
}
