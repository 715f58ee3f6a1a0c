package main

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"crypto/sha256"
	"debug/elf"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"slices"
	"strings"
	"testing"

	yamlv3 "go.yaml.in/yaml/v3"
)

// goreleaserConfig is the part of .goreleaser.yaml that says what a
// release holds.
type goreleaserConfig struct {
	Builds []struct {
		Goarch []string `yaml:"goarch"`
		Flags  []string `yaml:"flags"`
	} `yaml:"builds"`
	Archives []struct {
		Files []string `yaml:"files"`
	} `yaml:"archives"`
	Nfpms []struct {
		PackageName string `yaml:"package_name"`
		Bindir      string `yaml:"bindir"`
		Maintainer  string `yaml:"maintainer"`
		Homepage    string `yaml:"homepage"`
		Section     string `yaml:"section"`
		Contents    []struct {
			Src  string `yaml:"src"`
			Dst  string `yaml:"dst"`
			Type string `yaml:"type"`
		} `yaml:"contents"`
		Scripts map[string]string `yaml:"scripts"`
		Deb     struct {
			Predepends []string `yaml:"predepends"`
		} `yaml:"deb"`
	} `yaml:"nfpms"`
}

// TestRelease_Artifacts checks a directory of release files (CI builds it
// with scripts/build-release.sh; after `goreleaser release --snapshot` it
// is dist/) against .goreleaser.yaml: an archive and a .deb per
// architecture, each with exactly the files the config lists, the .deb's
// maintainer scripts and conffiles, checksums that match, and binaries
// that are static, of the right architecture, and run.
func TestRelease_Artifacts(t *testing.T) {
	dir := os.Getenv("PARLEY_RELEASE_DIR")
	if dir == "" {
		t.Skip("set PARLEY_RELEASE_DIR to the output of scripts/build-release.sh (CI does)")
	}
	raw, err := os.ReadFile(".goreleaser.yaml")
	if err != nil {
		t.Fatal(err)
	}
	var gr goreleaserConfig
	if err := yamlv3.Unmarshal(raw, &gr); err != nil {
		t.Fatal(err)
	}
	if len(gr.Builds) != 1 || len(gr.Archives) != 1 || len(gr.Nfpms) != 1 {
		t.Fatalf(".goreleaser.yaml: want one build, one archive and one nfpm; got %+v", gr)
	}
	script, err := os.ReadFile("scripts/build-release.sh")
	if err != nil {
		t.Fatal(err)
	}
	for _, flag := range gr.Builds[0].Flags {
		if !strings.Contains(string(script), flag) {
			t.Errorf("scripts/build-release.sh does not build with %s, as .goreleaser.yaml does", flag)
		}
	}
	sums := map[string]string{}
	sumFile, err := os.ReadFile(filepath.Join(dir, "checksums.txt"))
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(strings.TrimSpace(string(sumFile)), "\n") {
		sum, name, _ := strings.Cut(line, "  ")
		sums[name] = sum
	}
	nf := gr.Nfpms[0]
	for _, arch := range gr.Builds[0].Goarch {
		archives, _ := filepath.Glob(filepath.Join(dir, "parley_*_linux_"+arch+".tar.gz"))
		debs, _ := filepath.Glob(filepath.Join(dir, "parley_*_"+arch+".deb"))
		if len(archives) != 1 || len(debs) != 1 {
			t.Fatalf("%s: archives %v, debs %v; want one of each", arch, archives, debs)
		}
		for _, f := range []string{archives[0], debs[0]} {
			checkSum(t, f, sums[filepath.Base(f)])
		}

		// The archive: one directory with the binary and the listed files.
		want := append([]string{"parley"}, gr.Archives[0].Files...)
		got, bin := archiveFiles(t, archives[0])
		slices.Sort(want)
		if !slices.Equal(got, want) {
			t.Errorf("%s holds %v, want %v", filepath.Base(archives[0]), got, want)
		}
		checkReleaseBinary(t, bin, arch)

		// The .deb: the binary, the listed contents, scripts, conffiles.
		want = []string{nf.Bindir + "/parley"}
		var conffiles []string
		for _, c := range nf.Contents {
			want = append(want, c.Dst)
			if strings.HasPrefix(c.Type, "config") {
				conffiles = append(conffiles, c.Dst)
			}
		}
		slices.Sort(want)
		if got := debFiles(t, debs[0]); !slices.Equal(got, want) {
			t.Errorf("%s holds %v, want %v", filepath.Base(debs[0]), got, want)
		}
		control := t.TempDir()
		if out, err := exec.Command("dpkg-deb", "-e", debs[0], control).CombinedOutput(); err != nil {
			t.Fatalf("dpkg-deb -e: %v %s", err, out)
		}
		debScript := map[string]string{"preinstall": "preinst", "postinstall": "postinst", "preremove": "prerm", "postremove": "postrm"}
		for key, src := range nf.Scripts {
			want, _ := os.ReadFile(src)
			got, err := os.ReadFile(filepath.Join(control, debScript[key]))
			if err != nil || string(got) != string(want) {
				t.Errorf("%s: %s is not %s (%v)", filepath.Base(debs[0]), debScript[key], src, err)
			}
		}
		gotConf, _ := os.ReadFile(filepath.Join(control, "conffiles"))
		if strings.Fields(string(gotConf))[0] != conffiles[0] {
			t.Errorf("conffiles %q, want %v", gotConf, conffiles)
		}
		fields, _ := os.ReadFile(filepath.Join(control, "control"))
		if m := regexp.MustCompile(`(?m)^Version: (\S+)$`).FindSubmatch(fields); m == nil || strings.Contains(string(m[1]), "-") {
			// dpkg would read "1.2.0-rc1" as release 1.2.0, revision rc1,
			// and sort it after 1.2.0.
			t.Errorf("%s: control Version %q; a pre-release needs ~, not -", filepath.Base(debs[0]), m)
		}
		for _, want := range []string{"Package: " + nf.PackageName, "Architecture: " + arch, "Maintainer: " + nf.Maintainer,
			"Homepage: " + nf.Homepage, "Section: " + nf.Section, "Pre-Depends: " + strings.Join(nf.Deb.Predepends, ", ")} {
			if !strings.Contains(string(fields), want+"\n") {
				t.Errorf("%s control lacks %q:\n%s", filepath.Base(debs[0]), want, fields)
			}
		}
	}
}

func checkSum(t *testing.T, path, want string) {
	t.Helper()
	raw, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if got := fmt.Sprintf("%x", sha256.Sum256(raw)); got != want {
		t.Errorf("checksums.txt says %s for %s; it is %s", want, filepath.Base(path), got)
	}
}

// archiveFiles lists a release archive's files below its one top
// directory, sorted, and extracts the binary.
func archiveFiles(t *testing.T, path string) ([]string, string) {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	gz, err := gzip.NewReader(f)
	if err != nil {
		t.Fatal(err)
	}
	top := strings.TrimSuffix(filepath.Base(path), ".tar.gz")
	bin := filepath.Join(t.TempDir(), "parley")
	var files []string
	tr := tar.NewReader(gz)
	for {
		h, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		if h.Typeflag != tar.TypeReg {
			continue
		}
		name, ok := strings.CutPrefix(h.Name, top+"/")
		if !ok {
			t.Fatalf("%s: %s is outside the directory %s", filepath.Base(path), h.Name, top)
		}
		files = append(files, name)
		if name == "parley" {
			out, err := os.OpenFile(bin, os.O_CREATE|os.O_WRONLY, 0o755)
			if err != nil {
				t.Fatal(err)
			}
			if _, err := io.Copy(out, tr); err != nil {
				t.Fatal(err)
			}
			out.Close()
		}
	}
	slices.Sort(files)
	return files, bin
}

// debFiles lists a .deb's regular files as absolute paths, sorted.
func debFiles(t *testing.T, path string) []string {
	t.Helper()
	out, err := exec.Command("dpkg-deb", "--fsys-tarfile", path).Output()
	if err != nil {
		t.Fatalf("dpkg-deb --fsys-tarfile %s: %v", path, err)
	}
	var files []string
	tr := tar.NewReader(bytes.NewReader(out))
	for {
		h, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		if h.Typeflag == tar.TypeReg {
			files = append(files, strings.TrimPrefix(h.Name, "."))
		}
	}
	slices.Sort(files)
	return files
}

// checkReleaseBinary: static, built for arch, and (on this machine's
// architecture) runs.
func checkReleaseBinary(t *testing.T, bin, arch string) {
	t.Helper()
	f, err := elf.Open(bin)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	machine := map[string]elf.Machine{"amd64": elf.EM_X86_64, "arm64": elf.EM_AARCH64}[arch]
	if f.Machine != machine {
		t.Errorf("the %s binary is for %v", arch, f.Machine)
	}
	for _, p := range f.Progs {
		if p.Type == elf.PT_INTERP {
			t.Errorf("the %s binary is not static", arch)
		}
	}
	if arch == runtime.GOARCH {
		out, err := exec.Command(bin, "version").CombinedOutput()
		if err != nil || !strings.HasPrefix(string(out), "parley ") {
			t.Errorf("the %s binary's version: %v %s", arch, err, out)
		}
	}
}
