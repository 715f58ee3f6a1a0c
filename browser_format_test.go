package main

import (
	"strings"
	"testing"
)

// TestBrowser_Formatting (issue 14, item 12): *bold*, _italic_, `code`,
// fenced code blocks, quotes and links show formatted, built from DOM
// nodes (markup in them stays text), while the raw text is what is
// stored, searched and edited.
func TestBrowser_Formatting(t *testing.T) {
	ts := startServer(t, nil)
	bob, _ := signedIn(t, ts, "bob")
	bob.join("general")
	b := newBrowser(t)
	alice := b.newPage("alice", ts.URL())
	alice.signUp("alice")
	alice.joinRoom("general")

	raw := "*bold* and _italic_ and `a <b>code</b>` see https://example.com/x_y\n> quoted *words*\n```\nfenced <script>window.__xss = 1</script>\n  indented\n```\nafter, with snake_case_names and 2*3*4"
	chatAck(t, bob, "general", raw, "fmt")
	row := `[...document.querySelectorAll('#messages .msg[data-id]')].find((li) => li.textContent.includes('quoted'))`
	alice.waitJS("the formatted message is shown", row)
	type shown struct {
		Strong, Em, Code, Pre, Quote, Link, Text string
		QuoteStrong                              string
	}
	got := eval[shown](alice, `(() => { const r = `+row+`; const q = (s) => r.querySelector(s)?.textContent || '';
		return { Strong: q('.msg-text > strong'), Em: q('.msg-text em'), Code: q('.msg-text code.md-code'), Pre: q('.msg-text pre'),
			Quote: q('.msg-text blockquote'), QuoteStrong: q('.msg-text blockquote strong'), Link: r.querySelector('.msg-text a')?.getAttribute('href') || '',
			Text: r.querySelector('.msg-text').textContent }; })()`)
	want := shown{Strong: "bold", Em: "italic", Code: "a <b>code</b>", Pre: "fenced <script>window.__xss = 1</script>\n  indented",
		Quote: "quoted words", QuoteStrong: "words", Link: "https://example.com/x_y"}
	got.Text, want.Text = "", ""
	if got != want {
		t.Errorf("formatted as %+v, want %+v", got, want)
	}
	text := eval[string](alice, row+`.querySelector('.msg-text').textContent`)
	for _, plain := range []string{"snake_case_names", "2*3*4"} {
		if !strings.Contains(text, plain) {
			t.Errorf("%q lost its marks: %q", plain, text)
		}
	}
	if n := eval[int](alice, row+`.querySelectorAll('.msg-text script, .msg-text b').length`); n != 0 {
		t.Errorf("markup in code became %d elements", n)
	}
	if v := eval[string](alice, `String(window.__xss)`); v != "undefined" {
		t.Errorf("a script in a code block ran: %s", v)
	}

	// Search finds the raw text; the editor holds it.
	alice.typeText("#search-input", "quoted *words*\n")
	alice.waitText("#search-summary", "1 result")
	alice.click("#search-close")
	alice.typeText("#composer-input", "my *own* text")
	alice.pressEnter()
	alice.waitJS("alice's own message is formatted", `[...document.querySelectorAll('#messages .msg[data-id] .msg-text strong')].some((el) => el.textContent === 'own')`)
	alice.click("#composer-input")
	alice.pressKey("ArrowUp", 38)
	alice.waitJS("the editor holds the raw text", `document.activeElement.value === 'my *own* text'`)
	alice.pressKey("Escape", 27)
}

// TestBrowser_EmojiPicker (issue 14, item 12): the picker offers every
// emoji, found by name, not only the usual sixteen.
func TestBrowser_EmojiPicker(t *testing.T) {
	ts := startServer(t, nil)
	b := newBrowser(t)
	alice := b.newPage("alice", ts.URL())
	alice.signUp("alice")
	alice.joinRoom("general")
	alice.send("guacamole tonight?")
	alice.hover(rowOf("guacamole tonight?"))
	alice.click(`#messages .msg-tools [data-tool="react"]`)
	alice.waitJS("the search has the focus", `document.activeElement.matches('#emoji-picker .emoji-search')`)
	alice.typeText("#emoji-picker .emoji-search", "avoc")
	alice.waitJS("the avocado is found", `document.querySelector('#emoji-picker .emoji-btn[aria-label="avocado"]')`)
	alice.pressEnter()
	chip := rowOf("guacamole tonight?") + `?.querySelector('.reaction[data-emoji="🥑"]')`
	alice.waitJS("the avocado reaction is on the message", chip)
	if label := eval[string](alice, chip+`.getAttribute('aria-label')`); !strings.HasPrefix(label, "avocado: 1 reaction") {
		t.Errorf("the reaction's label is %q", label)
	}

	// Groups list everything; the keyboard moves in the grid.
	alice.hover(rowOf("guacamole tonight?"))
	alice.click(`#messages .msg-tools [data-tool="react"]`)
	alice.click(`#emoji-picker .emoji-tab[aria-label="Travel & Places"]`)
	alice.waitJS("the group is shown", `document.querySelectorAll('#emoji-picker .emoji-btn').length > 100 && document.querySelector('#emoji-picker .emoji-btn[aria-label="rocket"]')`)
	alice.fill("#emoji-picker .emoji-search", "zzzz-nothing")
	alice.waitText("#emoji-picker .emoji-heading", "No emoji")
	alice.pressKey("Escape", 27)
	alice.waitJS("the picker closed", `document.getElementById('emoji-picker').hidden`)
}
