package main

import (
	"archive/tar"
	"bufio"
	"debug/elf"
	"encoding/json"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// dockerfile is what the tests read from the Dockerfile: the RUN lines of
// the build stage and the final stage's settings.
type dockerfile struct {
	buildRuns   []string // RUN commands of the stage named build
	env         []string // KEY=value, from ENV
	workdir     string
	user        string
	volume      string
	expose      string
	entrypoint  []string
	cmd         []string
	healthcheck []string // the command after HEALTHCHECK ... CMD
}

func readDockerfile(t *testing.T) dockerfile {
	t.Helper()
	f, err := os.Open("Dockerfile")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var d dockerfile
	stage := ""
	jsonArray := func(s string) []string {
		var v []string
		if err := json.Unmarshal([]byte(s), &v); err != nil {
			t.Fatalf("Dockerfile: %q is not a JSON array (exec form): %v", s, err)
		}
		return v
	}
	lines := bufio.NewScanner(f)
	for lines.Scan() {
		line := strings.TrimSpace(lines.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		instr, rest, _ := strings.Cut(line, " ")
		switch instr {
		case "FROM":
			stage = rest
			if _, name, ok := strings.Cut(rest, " AS "); ok {
				stage = name
			}
		case "RUN":
			if stage == "build" {
				d.buildRuns = append(d.buildRuns, rest)
			}
		case "ENV":
			if stage == "scratch" {
				d.env = append(d.env, strings.Fields(rest)...)
			}
		case "WORKDIR":
			d.workdir = rest
		case "USER":
			d.user = rest
		case "VOLUME":
			d.volume = rest
		case "EXPOSE":
			d.expose = rest
		case "ENTRYPOINT":
			d.entrypoint = jsonArray(rest)
		case "CMD":
			d.cmd = jsonArray(rest)
		case "HEALTHCHECK":
			_, command, ok := strings.Cut(rest, " CMD ")
			if !ok {
				t.Fatalf("HEALTHCHECK without CMD: %s", rest)
			}
			d.healthcheck = jsonArray(command)
		}
	}
	return d
}

// buildImageTree runs the build stage's RUN lines as they are, with /out
// moved into a temporary directory, and returns that directory: the files
// the final image is made of.
func buildImageTree(t *testing.T, d dockerfile) string {
	t.Helper()
	out := filepath.Join(t.TempDir(), "out")
	for _, run := range d.buildRuns {
		if strings.HasPrefix(run, "go mod download") {
			continue
		}
		cmd := exec.Command("sh", "-c", strings.ReplaceAll(run, "/out/", out+"/"))
		if o, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("Dockerfile RUN %s: %v\n%s", run, err, o)
		}
	}
	return out
}

// TestContainer_BuildStageAndEntrypoint does what the image does, without
// a container runtime: it runs the build stage's commands with plain Go,
// checks the binary is static, starts it with the final stage's
// ENTRYPOINT, CMD, ENV and WORKDIR, and asks its HEALTHCHECK command until
// the server is ready; docker exec's admin commands reach it, and SIGTERM
// stops it.
func TestContainer_BuildStageAndEntrypoint(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the binary; skipped with -short")
	}
	d := readDockerfile(t)
	if d.user != "65532:65532" || d.volume != "/data" || d.expose != "8080" || d.workdir != "/data" {
		t.Fatalf("final stage: USER %q VOLUME %q EXPOSE %q WORKDIR %q; want a non-root user, /data and 8080", d.user, d.volume, d.expose, d.workdir)
	}
	tree := buildImageTree(t, d)
	bin := filepath.Join(tree, "parley")
	f, err := elf.Open(bin)
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range f.Progs {
		if p.Type == elf.PT_INTERP {
			t.Fatal("the image's binary needs a dynamic loader, which scratch does not have")
		}
	}
	f.Close()
	for _, want := range []string{"data", "etc/ssl/certs/ca-certificates.crt"} {
		if _, err := os.Stat(filepath.Join(tree, want)); err != nil {
			t.Fatalf("the build stage made no %s: %v", want, err)
		}
	}

	// The container's world, moved: /parley is the binary, /data a
	// temporary directory, and port 8080 a free loopback port.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := ln.Addr().(*net.TCPAddr).Port
	ln.Close()
	data := t.TempDir()
	moved := func(s string) string {
		s = strings.ReplaceAll(s, "/data", data)
		s = strings.ReplaceAll(s, ":8080", "127.0.0.1:"+strconv.Itoa(port))
		if s == "/parley" {
			return bin
		}
		return s
	}
	var env []string
	for _, kv := range d.env {
		env = append(env, moved(kv))
	}
	if !slices.Contains(env, "PARLEY_DB_PATH="+data+"/parley.db") {
		t.Fatalf("ENV %v: the database must be on the volume", d.env)
	}
	command := func(argv []string) *exec.Cmd {
		var args []string
		for _, a := range argv {
			args = append(args, moved(a))
		}
		cmd := exec.Command(args[0], args[1:]...)
		cmd.Env, cmd.Dir = env, moved(d.workdir)
		return cmd
	}
	server := startCommand(t, command(append(slices.Clone(d.entrypoint), d.cmd...)))
	deadline := time.Now().Add(10 * time.Second)
	for {
		out, err := command(d.healthcheck).CombinedOutput()
		if err == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("HEALTHCHECK %v never passed: %v %s", d.healthcheck, err, out)
		}
		time.Sleep(100 * time.Millisecond)
	}

	// docker exec CONTAINER /parley user add NAME: same environment, so
	// it finds the database and the server's admin socket.
	add := command(append(slices.Clone(d.entrypoint), "user", "add", "admin"))
	add.Stdin = strings.NewReader("admin-password\n")
	if out, err := add.CombinedOutput(); err != nil || !strings.Contains(string(out), "created user admin (admin") {
		t.Fatalf("user add in the container: %v %s", err, out)
	}
	backup := command(append(slices.Clone(d.entrypoint), "backup", "-"))
	if out, err := backup.Output(); err != nil || len(out) < 4096 {
		t.Fatalf("backup - in the container: %v, %d bytes", err, len(out))
	}

	// docker stop sends SIGTERM: parley stops cleanly, and is unhealthy.
	if err := server.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	if err := server.cmd.Wait(); err != nil {
		t.Fatalf("parley after SIGTERM: %v", err)
	}
	if err := command(d.healthcheck).Run(); err == nil {
		t.Fatal("HEALTHCHECK passed with the server stopped")
	}
}

// TestContainer_Image builds the image with podman (daemonless, from
// Debian's packages), the final stage from a binary built outside, as no
// registry is reachable for the golang base image; checks its settings
// and files; and runs the image's binary. Running the container itself is
// not tried: see README, "Containers".
func TestContainer_Image(t *testing.T) {
	if _, err := exec.LookPath("podman"); err != nil {
		if os.Getenv("PARLEY_CONTAINER_TESTS") == "1" {
			t.Fatal("PARLEY_CONTAINER_TESTS=1 but podman is not installed")
		}
		t.Skip("podman is not installed (apt-get install podman); CI sets PARLEY_CONTAINER_TESTS=1")
	}
	d := readDockerfile(t)
	tree := buildImageTree(t, d)
	ctx := filepath.Dir(tree)
	writeFile(t, filepath.Join(ctx, "Containerfile"), "FROM scratch\nCOPY out /out\n")
	podman := func(args ...string) string {
		t.Helper()
		out, err := exec.Command("podman", args...).CombinedOutput()
		if err != nil {
			t.Fatalf("podman %s: %v\n%s", strings.Join(args, " "), err, out)
		}
		return string(out)
	}
	tag := "localhost/parley-test:" + strconv.Itoa(os.Getpid())
	files := "localhost/parley-test-files:" + strconv.Itoa(os.Getpid())
	podman("build", "-q", "-t", files, "-f", filepath.Join(ctx, "Containerfile"), ctx)
	t.Cleanup(func() { exec.Command("podman", "rmi", "-f", tag, files).Run() })
	podman("build", "-q", "--format", "docker", "--build-arg", "BIN_IMAGE="+files, "-t", tag, "-f", "Dockerfile", ".")

	var inspect []struct {
		Config struct {
			User         string
			Env          []string
			Entrypoint   []string
			Cmd          []string
			WorkingDir   string
			ExposedPorts map[string]struct{}
			Volumes      map[string]struct{}
		}
		Healthcheck struct{ Test []string } // podman reports it beside Config
	}
	if err := json.Unmarshal([]byte(podman("image", "inspect", tag)), &inspect); err != nil || len(inspect) != 1 {
		t.Fatalf("image inspect: %v", err)
	}
	c := inspect[0].Config
	if c.User != "65532:65532" || c.WorkingDir != "/data" || !slices.Equal(c.Entrypoint, []string{"/parley"}) ||
		!slices.Equal(c.Cmd, []string{"serve"}) || !slices.Contains(c.Env, "PARLEY_DB_PATH=/data/parley.db") {
		t.Fatalf("image config %+v", c)
	}
	if _, ok := c.ExposedPorts["8080/tcp"]; !ok {
		t.Fatalf("image exposes %v, want 8080/tcp", c.ExposedPorts)
	}
	if _, ok := c.Volumes["/data"]; !ok {
		t.Fatalf("image volumes %v, want /data", c.Volumes)
	}
	if hc := inspect[0].Healthcheck.Test; !slices.Equal(hc, []string{"CMD", "/parley", "healthcheck"}) {
		t.Fatalf("image healthcheck %v", hc)
	}

	// The image's files: export a created (never started) container.
	id := strings.TrimSpace(podman("create", tag))
	t.Cleanup(func() { exec.Command("podman", "rm", "-f", id).Run() })
	export := filepath.Join(t.TempDir(), "rootfs.tar")
	podman("export", "-o", export, id)
	rf, err := os.Open(export)
	if err != nil {
		t.Fatal(err)
	}
	defer rf.Close()
	seen := map[string]*tar.Header{}
	bin := filepath.Join(t.TempDir(), "parley")
	tr := tar.NewReader(rf)
	for {
		h, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		name := strings.TrimSuffix(strings.TrimPrefix(h.Name, "./"), "/")
		seen[name] = h
		if name == "parley" {
			out, err := os.OpenFile(bin, os.O_CREATE|os.O_WRONLY, 0o755)
			if err != nil {
				t.Fatal(err)
			}
			io.Copy(out, tr)
			out.Close()
		}
	}
	if h := seen["data"]; h == nil || h.Uid != 65532 || h.Gid != 65532 {
		t.Fatalf("/data in the image: %+v; want it owned by 65532", h)
	}
	if h := seen["parley"]; h == nil || h.Mode&0o111 == 0 {
		t.Fatalf("/parley in the image: %+v", h)
	}
	if seen["etc/ssl/certs/ca-certificates.crt"] == nil {
		t.Fatal("the image has no CA certificates; Let's Encrypt would fail")
	}
	if out, err := exec.Command(bin, "version").CombinedOutput(); err != nil || !strings.HasPrefix(string(out), "parley ") {
		t.Fatalf("the image's /parley version: %v %s", err, out)
	}
}
