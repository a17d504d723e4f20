package main

import (
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"golang.org/x/crypto/bcrypt"
)

// serve with threatconnect.base_url runs the sync worker next to the TAXII
// server: objects synced from the simulator become readable over TAXII, and
// a cancelled context stops both with exit code 0 (issue 5).
func TestServeWithSync(t *testing.T) {
	dir := t.TempDir()
	hash, err := bcrypt.GenerateFromPassword([]byte("demo-password"), bcrypt.MinCost)
	if err != nil {
		t.Fatal(err)
	}
	addr := freeAddr(t)
	cfgText := fmt.Sprintf(`storage: {path: %q}
threatconnect:
  base_url: %s/api
  access_id: cmd-test
  secret_key: cmd-test-secret
  requests_per_second: 1000
sync:
  first_fetch: 0
taxii:
  listen: %s
  collections:
    - alias: tlp-green
      filter: {max_tlp: GREEN}
  users:
    - name: demo
      password_hash: "%s"
      read: ["*"]
`, filepath.Join(dir, "db.sqlite"), simServer(t, 200), addr, hash)
	path := filepath.Join(dir, "serve.yaml")
	if err := os.WriteFile(path, []byte(cfgText), 0o600); err != nil {
		t.Fatal(err)
	}
	stop, stderr := startServe(t, path)
	base := "http://" + addr + "/threatconnect/collections/tlp-green/objects/?match[type]=indicator&limit=5"
	deadline := time.Now().Add(30 * time.Second)
	for {
		code, body := taxiiGet(t, base)
		if code == http.StatusOK && strings.Contains(string(body), `"type":"indicator"`) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no synced indicator served within 30 s: %d %s\nstderr: %s", code, body, stderr.String())
		}
		time.Sleep(100 * time.Millisecond)
	}
	if code, _ := taxiiGet(t, "http://"+addr+"/readyz"); code != http.StatusOK {
		t.Errorf("/readyz = %d after a successful sync", code)
	}
	if code := stop(); code != exitOK {
		t.Fatalf("serve exit = %d\n%s", code, stderr.String())
	}
	if strings.Contains(stderr.String(), "cmd-test-secret") {
		t.Error("serve logged the secret key")
	}
}
