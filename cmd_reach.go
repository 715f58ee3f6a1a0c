package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"time"
)

// parley invite, parley hook and parley bot: invite links, incoming
// webhooks and bot accounts from the command line, through the running
// server's admin socket or directly on the database.

const inviteUsage = `Usage: parley invite [-room ROOM] [-uses N] [-expires DURATION] [-config FILE] [-db FILE]

Prints an invite link: opened in a browser, it shows sign-up (even while
auth.registration is invite) and, with -room, lands the new account in ROOM.
It works -uses times (0: until it expires) and expires after -expires
(default auth.invite_ttl, 168h). The link is a secret: the server keeps
only its hash, so this is the one time it is shown.

`

func runInvite(ctx context.Context, args, environ []string, stdout, stderr io.Writer) error {
	fset, common := newFlagSet("invite", inviteUsage, stderr)
	room := fset.String("room", "", "the room a new account lands in")
	uses := fset.Int("uses", 1, "how many accounts the link may make (0: no limit but the expiry)")
	expires := fset.Duration("expires", 0, "how long the link works (default auth.invite_ttl)")
	if _, err := parseArgs(fset, args, 0); err != nil {
		return err
	}
	cfg, err := common.load(environ)
	if err != nil {
		return err
	}
	if *expires == 0 {
		*expires = cfg.Auth.InviteTTL
	}
	api, _, done, err := openAdmin(ctx, cfg, stderr, true)
	if err != nil {
		return err
	}
	defer done()
	out, err := api.CreateInvite(ctx, *room, *uses, *expires)
	if err != nil {
		return fmt.Errorf("invite: %w", err)
	}
	what := "an invite link"
	if *room != "" {
		what += " to " + *room
	}
	fmt.Fprintf(stdout, "%s (valid until %s, %s):\n%s\n", what, out.ExpiresAt.Local().Format(time.DateTime), usesText(*uses), out.URL)
	warnLocalhost(out.URL, stderr)
	return nil
}

func usesText(n int) string {
	switch n {
	case 0:
		return "any number of times"
	case 1:
		return "once"
	}
	return fmt.Sprintf("%d times", n)
}

func warnLocalhost(link string, stderr io.Writer) {
	if linkNamesLocalhost(link) {
		fmt.Fprintln(stderr, "warning: this link names localhost, which only works on the server itself; set "+
			"server.public_url (such as https://chat.example.com) in the config")
	}
}

const hookUsage = `Usage: parley hook add ROOM [-name NAME] | rm ID | list   [-config FILE] [-db FILE]

  add ROOM   make an incoming webhook that posts into ROOM as a bot named
             NAME (default hook-XXXXXX), and print its URL: POST Slack's
             {"text": "..."}, or Alertmanager's or Grafana's alert JSON, to it.
             The URL is a secret shown this once; the server keeps its hash.
  rm ID      revoke a webhook (its bot leaves the room)
  list       list the webhooks of every room

`

func runHook(ctx context.Context, args, environ []string, stdout, stderr io.Writer) error {
	if len(args) == 0 || strings.HasPrefix(args[0], "-") {
		fmt.Fprint(stderr, hookUsage)
		if len(args) > 0 && (args[0] == "-h" || args[0] == "-help" || args[0] == "--help") {
			return flag.ErrHelp
		}
		return usageError{"hook needs a command: add, rm or list"}
	}
	sub, args := args[0], args[1:]
	want := 1
	switch sub {
	case "add", "rm":
	case "list":
		want = 0
	default:
		fmt.Fprint(stderr, hookUsage)
		return usageError{fmt.Sprintf("unknown hook command %q", sub)}
	}
	fset, common := newFlagSet("hook "+sub, hookUsage, stderr)
	name := ""
	if sub == "add" {
		fset.StringVar(&name, "name", "", "the webhook's bot's name")
	}
	pos, err := parseArgs(fset, args, want)
	if err != nil {
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
	switch sub {
	case "add":
		out, err := api.CreateHook(ctx, pos[0], name)
		if err != nil {
			return fmt.Errorf("hook add %s: %w", pos[0], err)
		}
		fmt.Fprintf(stdout, "webhook %s posts into %s as %s:\n%s\n", out.ID, out.RoomID, out.Name, out.URL)
		warnLocalhost(out.URL, stderr)
	case "rm":
		if err := api.DeleteHook(ctx, pos[0]); err != nil {
			return fmt.Errorf("hook rm %s: %w", pos[0], err)
		}
		fmt.Fprintf(stdout, "webhook %s revoked\n", pos[0])
	case "list":
		hooks, err := api.Hooks(ctx)
		if err != nil {
			return fmt.Errorf("hook list: %w", err)
		}
		tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "ID\tROOM\tBOT\tCREATED")
		for _, h := range hooks {
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", h.ID, h.RoomID, h.BotName, h.CreatedAt.Format(time.DateOnly))
		}
		return tw.Flush()
	}
	return nil
}

const botUsage = `Usage: parley bot add NAME [-config FILE] [-db FILE]

Makes a bot account and prints its API token, which signs the bot in over
the WebSocket protocol without a password: {"type": "auth", "data":
{"token": "..."}}. The token is shown this once; parley user rm NAME
removes the bot and its token.

`

func runBot(ctx context.Context, args, environ []string, stdout, stderr io.Writer) error {
	if len(args) == 0 || args[0] != "add" {
		fmt.Fprint(stderr, botUsage)
		if len(args) > 0 && (args[0] == "-h" || args[0] == "-help" || args[0] == "--help") {
			return flag.ErrHelp
		}
		return usageError{"bot needs a command: add"}
	}
	fset, common := newFlagSet("bot add", botUsage, stderr)
	pos, err := parseArgs(fset, args[1:], 1)
	if err != nil {
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
	out, err := api.CreateBot(ctx, pos[0])
	if err != nil {
		return fmt.Errorf("bot add %s: %w", pos[0], err)
	}
	fmt.Fprintf(stdout, "bot %s made; its API token (shown once):\n%s\n", out.Name, out.Token)
	return nil
}
