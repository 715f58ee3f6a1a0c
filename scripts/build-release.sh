#!/usr/bin/env bash
# Builds parley's release files into a directory, without goreleaser:
#
#   scripts/build-release.sh [VERSION [OUT-DIR]]
#
# VERSION is a tag such as v1.2.0 (default: a snapshot version from the
# commit), OUT-DIR defaults to dist/. It makes what .goreleaser.yaml
# describes, for linux amd64 and arm64: parley_VERSION_linux_ARCH.tar.gz,
# parley_VERSION_ARCH.deb and checksums.txt. It needs Go, git, tar,
# sha256sum and dpkg-deb (Debian and Ubuntu have all of them).
#
# goreleaser (`goreleaser release --clean`, README "Releases") is the usual
# way to publish a release; this script is what CI runs instead, because
# installing goreleaser with `go install` takes about six minutes on a new
# machine. TestRelease_Artifacts checks both produce the same files from
# .goreleaser.yaml's lists, so the two cannot drift apart.
set -euo pipefail
cd "$(dirname "$0")/.."

commit=$(git rev-parse --short HEAD 2>/dev/null || echo unknown)
version=${1:-v0.0.0-snapshot+$commit}
out=${2:-dist}
ver=${version#v} # archives and packages carry the version without its v
# In a .deb's version a pre-release sorts before its release with ~, not -
# (1.2.0~rc1 < 1.2.0), as nfpm writes it.
deb_ver=${ver/-/\~}
arches=(amd64 arm64)
# The archive's files besides the binary, as in .goreleaser.yaml.
archive_files=(LICENSE README.md CHANGELOG.md config.yaml deploy/parley.service
	deploy/parley-backup.service deploy/parley-backup.timer deploy/config.yaml
	compose.yaml Dockerfile)

rm -rf "$out"
mkdir -p "$out"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
# Files carry the commit's time, not the build's, as with goreleaser.
mtime=$(git log -1 --format=%ct 2>/dev/null || date +%s)

for arch in "${arches[@]}"; do
	bin="$work/build-$arch/parley"
	# README's static build, with the flags .goreleaser.yaml gives.
	CGO_ENABLED=0 GOOS=linux GOARCH=$arch \
		go build -trimpath -buildvcs=true -ldflags="-s -w" -o "$bin" .
	touch -d "@$mtime" "$bin"

	# The archive: one directory with the binary, docs and deploy files.
	name="parley_${ver}_linux_${arch}"
	mkdir -p "$work/$name"
	cp "$bin" "$work/$name/"
	for f in "${archive_files[@]}"; do
		mkdir -p "$work/$name/$(dirname "$f")"
		cp "$f" "$work/$name/$f"
	done
	tar -C "$work" --sort=name --owner=0 --group=0 --numeric-owner --mtime="@$mtime" \
		-czf "$out/$name.tar.gz" "$name"

	# The .deb: the same contents and maintainer scripts as nfpms in
	# .goreleaser.yaml.
	root="$work/deb-$arch"
	install -D -m 0755 "$bin" "$root/usr/bin/parley"
	install -D -m 0644 deploy/parley.service "$root/usr/lib/systemd/system/parley.service"
	install -D -m 0644 deploy/parley-backup.service "$root/usr/lib/systemd/system/parley-backup.service"
	install -D -m 0644 deploy/parley-backup.timer "$root/usr/lib/systemd/system/parley-backup.timer"
	install -D -m 0644 deploy/config.yaml "$root/etc/parley/config.yaml"
	install -D -m 0644 config.yaml "$root/usr/share/doc/parley/config.yaml"
	install -D -m 0644 LICENSE "$root/usr/share/doc/parley/copyright"
	install -D -m 0644 CHANGELOG.md "$root/usr/share/doc/parley/CHANGELOG.md"
	install -D -m 0644 README.md "$root/usr/share/doc/parley/README.md"
	mkdir -p "$root/DEBIAN"
	install -m 0755 deploy/deb/preinstall.sh "$root/DEBIAN/preinst"
	install -m 0755 deploy/deb/postinstall.sh "$root/DEBIAN/postinst"
	install -m 0755 deploy/deb/preremove.sh "$root/DEBIAN/prerm"
	install -m 0755 deploy/deb/postremove.sh "$root/DEBIAN/postrm"
	echo /etc/parley/config.yaml >"$root/DEBIAN/conffiles"
	cat >"$root/DEBIAN/control" <<CONTROL
Package: parley
Version: $deb_ver
Section: net
Priority: optional
Architecture: $arch
Pre-Depends: passwd
Maintainer: The parley authors <parley@users.noreply.github.com>
Installed-Size: $(du -sk --exclude=DEBIAN "$root" | cut -f1)
Homepage: https://github.com/parley-chat/parley
Description: Self-hosted real-time chat server in one binary.
 parley holds the server, the web client and an embedded database: rooms,
 direct messages, presence, history, uploads and backups, run as a
 hardened systemd service.
CONTROL
	find "$root" -exec touch -h -d "@$mtime" {} +
	dpkg-deb --root-owner-group -Zgzip --build "$root" "$out/parley_${ver}_${arch}.deb" >/dev/null
done

(cd "$out" && sha256sum -- *.tar.gz *.deb >checksums.txt)
echo "built parley $version in $out:"
ls -l "$out"
