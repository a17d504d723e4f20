package slug

import "testing"

func TestOf(t *testing.T) {
	for in, want := range map[string]string{
		"Demo Organization":   "demo-organization",
		"  Drops--To  File! ": "drops-to-file",
		"Ünïcode & Co.":       "n-code-co",
		"!!!":                 "",
		"":                    "",
		"already-a-slug-42":   "already-a-slug-42",
	} {
		if got := Of(in); got != want {
			t.Errorf("Of(%q) = %q, want %q", in, got, want)
		}
	}
}
