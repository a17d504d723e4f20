package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"strings"

	"golang.org/x/crypto/bcrypt"
)

// bcryptCost is the work factor of stored password hashes.
const bcryptCost = 12

func init() {
	register(command{
		name:    "hash-password",
		summary: "Read a password on stdin and print its bcrypt hash for taxii.users[].password_hash",
		run:     runHashPassword,
	})
}

func runHashPassword(ctx context.Context, e *env, args []string) error {
	fs := e.flagSet("hash-password")
	if err := fs.Parse(args); err != nil {
		return usageErr(err)
	}
	if fs.NArg() > 0 {
		return usageErrorf("the password is read from stdin, never from arguments (they show in ps)")
	}
	pw, err := readPassword(e.Stdin)
	if err != nil {
		return err
	}
	h, err := bcrypt.GenerateFromPassword([]byte(pw), bcryptCost)
	if err != nil {
		return fmt.Errorf("hash password: %w", err)
	}
	fmt.Fprintln(e.Stdout, string(h))
	return nil
}

// readPassword reads the first line of r, without its line ending.
func readPassword(r io.Reader) (string, error) {
	line, err := bufio.NewReader(io.LimitReader(r, 4096)).ReadString('\n')
	if err != nil && !errors.Is(err, io.EOF) {
		return "", fmt.Errorf("read password from stdin: %w", err)
	}
	pw := strings.TrimRight(line, "\r\n")
	switch {
	case pw == "":
		return "", usageErrorf("empty password: type it on stdin, e.g. printf '%%s' \"$PASS\" | taxii-bridge hash-password")
	case len(pw) > 72:
		return "", usageErrorf("password longer than 72 bytes; bcrypt would ignore the rest")
	}
	return pw, nil
}
