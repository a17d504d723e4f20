package config

import (
	"fmt"
	"strconv"
	"strings"
	"time"
)

// Duration is a time.Duration written as Go does ("15m", "90s", "1h30m") or
// as whole days ("30d"); "0" is zero. A bad value is kept and reported by
// Validate with its key path rather than aborting the parse.
type Duration struct {
	d   time.Duration
	bad string
}

// D returns the duration.
func (d Duration) D() time.Duration { return d.d }

// Dur makes a Duration.
func Dur(d time.Duration) Duration { return Duration{d: d} }

// ParseDuration reads "30d", "15m", "1h30m" or "0".
func ParseDuration(s string) (time.Duration, error) {
	v := strings.TrimSpace(s)
	if v == "" {
		return 0, fmt.Errorf("empty duration")
	}
	if days, ok := strings.CutSuffix(v, "d"); ok {
		n, err := strconv.ParseInt(days, 10, 64)
		if err != nil || n < 0 || n > 36500 {
			return 0, fmt.Errorf("invalid duration %q (days must be a whole number from 0 to 36500, as in 30d)", s)
		}
		return time.Duration(n) * 24 * time.Hour, nil
	}
	if v == "0" {
		return 0, nil
	}
	d, err := time.ParseDuration(v)
	if err != nil {
		return 0, fmt.Errorf("invalid duration %q (use forms like 90s, 15m, 1h30m or 30d)", s)
	}
	if d < 0 {
		return 0, fmt.Errorf("invalid duration %q: must not be negative", s)
	}
	return d, nil
}

// UnmarshalText reads a duration; it never fails (see Duration).
func (d *Duration) UnmarshalText(b []byte) error {
	v, err := ParseDuration(string(b))
	if err != nil {
		*d = Duration{bad: string(b)}
		return nil
	}
	*d = Duration{d: v}
	return nil
}

// MarshalText writes the duration, in days when it is a whole number of them.
func (d Duration) MarshalText() ([]byte, error) { return []byte(d.String()), nil }

// String formats the duration, in days when it is a whole number of them.
func (d Duration) String() string {
	day := 24 * time.Hour
	if d.d >= day && d.d%day == 0 {
		return fmt.Sprintf("%dd", d.d/day)
	}
	return d.d.String()
}

func (d Duration) check() error {
	if d.bad != "" {
		_, err := ParseDuration(d.bad)
		return err
	}
	return nil
}
