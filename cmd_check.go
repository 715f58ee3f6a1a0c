package main

import (
	"context"
	"fmt"
	"io"
)

const checkUsage = `Usage: parley check [-config FILE] [-db FILE]

Decodes every record of the database (accounts, sign-in tokens, reset
links, rooms, messages, file records) and lists those that are damaged,
with what is wrong. It only reads: the server skips a damaged message
when it shows history, search or threads, and deletes it when its room
is trimmed past it. With a server running it asks the server (over the
admin socket); otherwise it reads the database directly. The exit status
is 1 when something is damaged.

`

func runCheck(ctx context.Context, args, environ []string, stdout, stderr io.Writer) error {
	fset, common := newFlagSet("check", checkUsage, stderr)
	if _, err := parseArgs(fset, args, 0); err != nil {
		return err
	}
	cfg, err := common.load(environ)
	if err != nil {
		return err
	}
	api, how, done, err := openAdmin(ctx, cfg, stderr, true)
	if err != nil {
		return err
	}
	defer done()
	problems, err := api.Check(ctx)
	if err != nil {
		return fmt.Errorf("check %s: %w", cfg.DB.Path, err)
	}
	for _, p := range problems {
		fmt.Fprintf(stdout, "damaged: %s: %s\n", p.Where, p.Err)
	}
	if len(problems) > 0 {
		return fmt.Errorf("check %s: %d damaged record(s) (%s)", cfg.DB.Path, len(problems), how)
	}
	fmt.Fprintf(stdout, "%s: every record decodes (%s)\n", cfg.DB.Path, how)
	return nil
}
