package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/crypto/bcrypt"

	"github.com/taxii-bridge/taxii-bridge/taxii"
)

// syncBuffer is a bytes.Buffer safe for the server goroutine and the test.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

func freeAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	return addr
}

// startServe runs `serve -config path` until the returned stop is called,
// which returns the exit code.
func startServe(t *testing.T, path string) (stop func() int, stderr *syncBuffer) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	var out syncBuffer
	stderr = &syncBuffer{}
	done := make(chan int, 1)
	go func() {
		done <- run(ctx, []string{"serve", "-config", path}, strings.NewReader(""), &out, stderr, func(string) string { return "" })
	}()
	return func() int {
		cancel()
		select {
		case code := <-done:
			return code
		case <-time.After(15 * time.Second):
			t.Fatal("serve did not stop within 15 s of cancellation")
			return -1
		}
	}, stderr
}

// get fetches a TAXII URL as user demo, waiting for the server to come up.
func taxiiGet(t *testing.T, url string) (int, []byte) {
	t.Helper()
	var lastErr error
	for i := 0; i < 100; i++ {
		req, _ := http.NewRequest(http.MethodGet, url, nil)
		req.SetBasicAuth("demo", "demo-password")
		req.Header.Set("Accept", taxii.MediaType)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			lastErr = err
			time.Sleep(50 * time.Millisecond)
			continue
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		return resp.StatusCode, b
	}
	t.Fatalf("GET %s: %v", url, lastErr)
	return 0, nil
}

// serve runs a standalone TAXII server from a config file, keeps collection
// ids and the generated cursor secret across restarts (taxii21.md D-19, D-8,
// C-7), and shuts down cleanly on cancellation with exit code 0.
func TestServeStandalone(t *testing.T) {
	dir := t.TempDir()
	hash, err := bcrypt.GenerateFromPassword([]byte("demo-password"), bcrypt.MinCost)
	if err != nil {
		t.Fatal(err)
	}
	addr := freeAddr(t)
	cfgText := fmt.Sprintf(`storage:
  path: %s
taxii:
  listen: %s
  api_root: root1
  collections:
    - alias: submissions
      title: Submissions
      writable: true
  users:
    - name: demo
      password_hash: "%s"
      read: ["*"]
      write: ["submissions"]
`, filepath.Join(dir, "db.sqlite"), addr, hash)
	path := filepath.Join(dir, "serve.yaml")
	if err := os.WriteFile(path, []byte(cfgText), 0o600); err != nil {
		t.Fatal(err)
	}
	base := "http://" + addr

	stop, stderr := startServe(t, path)
	code, body := taxiiGet(t, base+"/taxii2/")
	if code != http.StatusOK || !strings.Contains(string(body), `"/root1/"`) {
		t.Fatalf("discovery = %d %s\nstderr: %s", code, body, stderr.String())
	}
	code, body = taxiiGet(t, base+"/root1/collections/submissions/")
	var col struct {
		ID       string `json:"id"`
		CanWrite bool   `json:"can_write"`
	}
	if err := json.Unmarshal(body, &col); err != nil || code != http.StatusOK || !col.CanWrite {
		t.Fatalf("collection = %d %s", code, body)
	}
	// Post two objects, take a next cursor from a one-object page.
	env := `{"objects":[` +
		`{"type":"ipv4-addr","id":"ipv4-addr--00000000-0000-4000-8000-000000000001","spec_version":"2.1","value":"10.0.0.1"},` +
		`{"type":"ipv4-addr","id":"ipv4-addr--00000000-0000-4000-8000-000000000002","spec_version":"2.1","value":"10.0.0.2"}]}`
	req, _ := http.NewRequest(http.MethodPost, base+"/root1/collections/"+col.ID+"/objects/", strings.NewReader(env))
	req.SetBasicAuth("demo", "demo-password")
	req.Header.Set("Accept", taxii.MediaType)
	req.Header.Set("Content-Type", taxii.MediaType)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusAccepted {
		t.Fatalf("POST = %d", resp.StatusCode)
	}
	_, body = taxiiGet(t, base+"/root1/collections/"+col.ID+"/objects/?limit=1")
	var page struct {
		Next string `json:"next"`
	}
	if err := json.Unmarshal(body, &page); err != nil || page.Next == "" {
		t.Fatalf("first page %s has no next", body)
	}
	if code := stop(); code != exitOK {
		t.Fatalf("serve exit = %d\n%s", code, stderr.String())
	}

	// Restart: same collection id, and the old cursor still verifies.
	stop, stderr = startServe(t, path)
	defer stop()
	code, body = taxiiGet(t, base+"/root1/collections/submissions/")
	var col2 struct {
		ID string `json:"id"`
	}
	if err := json.Unmarshal(body, &col2); err != nil || col2.ID != col.ID {
		t.Fatalf("after restart collection = %d %s, want id %s", code, body, col.ID)
	}
	code, body = taxiiGet(t, base+"/root1/collections/"+col.ID+"/objects/?next="+page.Next)
	if code != http.StatusOK || !strings.Contains(string(body), "ipv4-addr--00000000-0000-4000-8000-000000000002") {
		t.Fatalf("old cursor after restart = %d %s\nstderr: %s", code, body, stderr.String())
	}
	if code, _ := taxiiGet(t, base+"/readyz"); code != http.StatusOK {
		t.Errorf("/readyz = %d", code)
	}
}

func TestServeBadListen(t *testing.T) {
	dir := t.TempDir()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	path := filepath.Join(dir, "serve.yaml")
	cfgText := fmt.Sprintf("storage:\n  path: %s\ntaxii:\n  listen: %s\n", filepath.Join(dir, "db.sqlite"), ln.Addr())
	if err := os.WriteFile(path, []byte(cfgText), 0o600); err != nil {
		t.Fatal(err)
	}
	code, _, errOut := runCmd(t, "", nil, "serve", "-config", path)
	if code != exitFailure || !strings.Contains(errOut, "taxii.listen") {
		t.Errorf("serve on a busy port: exit %d, stderr %s", code, errOut)
	}
}

// Issue 14: taxii.max_objects_per_post and taxii.status_retention reach the
// server: the API root advertises them and a larger envelope is refused.
func TestServePostLimitsFromConfig(t *testing.T) {
	dir := t.TempDir()
	hash, err := bcrypt.GenerateFromPassword([]byte("demo-password"), bcrypt.MinCost)
	if err != nil {
		t.Fatal(err)
	}
	addr := freeAddr(t)
	cfgText := fmt.Sprintf(`storage:
  path: %s
taxii:
  listen: %s
  api_root: root1
  max_objects_per_post: 1
  status_retention: 48h
  collections:
    - alias: submissions
      writable: true
  users:
    - name: demo
      password_hash: "%s"
      read: ["*"]
      write: ["submissions"]
`, filepath.Join(dir, "db.sqlite"), addr, hash)
	path := filepath.Join(dir, "serve.yaml")
	if err := os.WriteFile(path, []byte(cfgText), 0o600); err != nil {
		t.Fatal(err)
	}
	base := "http://" + addr
	stop, stderr := startServe(t, path)
	defer stop()
	code, body := taxiiGet(t, base+"/root1/")
	if code != http.StatusOK || !strings.Contains(string(body), "at most 1 objects (max_objects_per_post)") || !strings.Contains(string(body), "2 days") ||
		!strings.Contains(string(body), `"x_taxii_bridge_max_objects_per_post":1`) {
		t.Fatalf("api root = %d %s\nstderr: %s", code, body, stderr.String())
	}
	env := `{"objects":[` +
		`{"type":"ipv4-addr","id":"ipv4-addr--00000000-0000-4000-8000-000000000001","spec_version":"2.1","value":"10.0.0.1"},` +
		`{"type":"ipv4-addr","id":"ipv4-addr--00000000-0000-4000-8000-000000000002","spec_version":"2.1","value":"10.0.0.2"}]}`
	req, _ := http.NewRequest(http.MethodPost, base+"/root1/collections/submissions/objects/", strings.NewReader(env))
	req.SetBasicAuth("demo", "demo-password")
	req.Header.Set("Accept", taxii.MediaType)
	req.Header.Set("Content-Type", taxii.MediaType)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusUnprocessableEntity || !strings.Contains(string(b), "max_objects_per_post") {
		t.Errorf("POST of 2 objects = %d %s, want a 422 naming max_objects_per_post", resp.StatusCode, b)
	}
}
