package main

import (
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// buildSourceCopy copies what building parley needs (the package's Go
// files, internal/, go.mod, go.sum and static/) into a fresh directory, so a test can
// build it in a git repository of its own.
func buildSourceCopy(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	err := filepath.WalkDir(".", func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		under := func(top string) bool { return path == top || strings.HasPrefix(path, top+string(filepath.Separator)) }
		if d.IsDir() {
			if path != "." && !under("static") && !under("internal") {
				return fs.SkipDir
			}
			return os.MkdirAll(filepath.Join(dir, path), 0o755)
		}
		name := d.Name()
		keep := under("static") || name == "go.mod" || name == "go.sum" ||
			(strings.HasSuffix(name, ".go") && !strings.HasSuffix(name, "_test.go"))
		if !keep {
			return nil
		}
		raw, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		return os.WriteFile(filepath.Join(dir, path), raw, 0o644)
	})
	if err != nil {
		t.Fatal(err)
	}
	return dir
}

// git runs git in dir with a fixed identity, failing the test on error.
func git(t *testing.T, dir string, args ...string) {
	t.Helper()
	cmd := exec.Command("git", args...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "GIT_AUTHOR_NAME=t", "GIT_AUTHOR_EMAIL=t@example.com",
		"GIT_COMMITTER_NAME=t", "GIT_COMMITTER_EMAIL=t@example.com", "GIT_CONFIG_GLOBAL=/dev/null")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("git %s: %v\n%s", strings.Join(args, " "), err, out)
	}
}

// TestVersion_FromTag builds parley from a checkout of a version tag, as
// README's release steps do, and checks `parley version` prints the tag.
func TestVersion_FromTag(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the binary; skipped with -short")
	}
	if _, err := exec.LookPath("git"); err != nil {
		t.Skip("git is not installed")
	}
	src := buildSourceCopy(t)
	git(t, src, "init", "-q")
	git(t, src, "add", "-A")
	git(t, src, "commit", "-q", "-m", "release")
	git(t, src, "tag", "-a", "v1.2.3", "-m", "v1.2.3")
	bin := filepath.Join(t.TempDir(), "parley")
	// -buildvcs=true as in README's build command: some machines set
	// GOFLAGS=-buildvcs=false, which leaves the version out.
	cmd := exec.Command("go", "build", "-buildvcs=true", "-o", bin, ".")
	cmd.Dir = src
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	out, err := exec.Command(bin, "version").CombinedOutput()
	if err != nil || !strings.HasPrefix(string(out), "parley v1.2.3, commit ") || strings.Contains(string(out), "modified") {
		t.Fatalf("parley version built from tag v1.2.3: %v %q", err, out)
	}
}
