package main

import (
	"context"
	"fmt"
	"io"
	"text/tabwriter"
)

const statusUsage = `Usage: parley status [-config FILE] [-db FILE]

Shows whether a server runs on the database (and which version), how large
the database file is and how much of it is free space (which parley
compact gives back), the uploads it keeps, and how many accounts and rooms
there are. It asks the running server over its admin socket, or reads the
database directly when none runs.

`

func runStatus(ctx context.Context, args, environ []string, stdout, stderr io.Writer) error {
	fset, common := newFlagSet("status", statusUsage, stderr)
	if _, err := parseArgs(fset, args, 0); err != nil {
		return err
	}
	cfg, err := common.load(environ)
	if err != nil {
		return err
	}
	api, _, done, err := openAdmin(ctx, cfg, stderr, true)
	if err != nil {
		return err
	}
	defer done()
	st, err := api.Status(ctx)
	if err != nil {
		return fmt.Errorf("status: %w", err)
	}
	server := "not running (the database was read directly)"
	if _, ok := api.(*socketAdmin); ok {
		server = "running: " + st.Version
	}
	z := st.Sizes
	uploadLimit := "no limit"
	if cfg.Uploads.TotalBytes > 0 {
		uploadLimit = "limit " + humanBytes(cfg.Uploads.TotalBytes)
	}
	tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintf(tw, "server:\t%s\n", server)
	fmt.Fprintf(tw, "database:\t%s\n", cfg.DB.Path)
	fmt.Fprintf(tw, "size:\t%s (%d bytes), of which %s (%d bytes) free: parley compact gives it back\n",
		humanBytes(z.File), z.File, humanBytes(z.Free), z.Free)
	fmt.Fprintf(tw, "uploads:\t%d files, %s (%d bytes; %s)\n", z.Uploads, humanBytes(z.UploadBytes), z.UploadBytes, uploadLimit)
	fmt.Fprintf(tw, "accounts:\t%d\n", st.Users)
	fmt.Fprintf(tw, "rooms:\t%d\n", st.Rooms)
	return tw.Flush()
}
