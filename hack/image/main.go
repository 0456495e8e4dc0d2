// Command image assembles bgplb's container image from a static bgplb binary
// and writes it as an OCI image layout in a tar file, with no Docker engine
// or registry involved. Load it with `docker load`, `podman load`,
// `ctr image import` or `kind load image-archive`.
//
// -name and -user make the same kind of one-binary image of another static
// program: the real-node test cluster's pause and backend images.
package main

import (
	"archive/tar"
	"bytes"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
	"github.com/google/go-containerregistry/pkg/v1/types"
)

func main() {
	bin := flag.String("binary", "bin/bgplb", "static bgplb binary to put in the image")
	out := flag.String("out", "bin/bgplb-image.tar", "OCI image tarball to write")
	ref := flag.String("tag", "ghcr.io/bgplb/bgplb:dev", "image reference recorded in the tarball")
	arch := flag.String("arch", "amd64", "architecture of the binary")
	name := flag.String("name", "bgplb", "file name of the binary in the image (/NAME, the entrypoint)")
	user := flag.String("user", "65532:65532", "uid:gid the image runs as")
	flag.Parse()
	if err := buildImage(*bin, *out, *ref, *arch, *name, *user); err != nil {
		fmt.Fprintln(os.Stderr, "image:", err)
		os.Exit(1)
	}
}

func build(bin, out, ref, arch string) error {
	return buildImage(bin, out, ref, arch, "bgplb", "65532:65532")
}

// buildImage writes an image whose one layer holds bin as /name, run as user.
func buildImage(bin, out, ref, arch, name, user string) error {
	if name == "" || strings.ContainsAny(name, "/ ") {
		return fmt.Errorf("-name %q: want a plain file name", name)
	}
	exe, err := os.ReadFile(bin)
	if err != nil {
		return fmt.Errorf("reading binary: %w", err)
	}
	layerTar, err := rootfs(exe, name)
	if err != nil {
		return err
	}
	layer, err := tarball.LayerFromOpener(func() (io.ReadCloser, error) {
		return io.NopCloser(bytes.NewReader(layerTar)), nil
	}, tarball.WithMediaType(types.OCILayer))
	if err != nil {
		return fmt.Errorf("making layer: %w", err)
	}
	img, err := mutate.AppendLayers(mutate.MediaType(empty.Image, types.OCIManifestSchema1), layer)
	if err != nil {
		return fmt.Errorf("adding layer: %w", err)
	}
	img = mutate.ConfigMediaType(img, types.OCIConfigJSON)
	cf, err := img.ConfigFile()
	if err != nil {
		return err
	}
	cf = cf.DeepCopy()
	cf.OS, cf.Architecture = "linux", arch
	cf.Created = v1.Time{Time: time.Unix(0, 0).UTC()} // reproducible
	cf.Config.Entrypoint = []string{"/" + name}
	cf.Config.User = user
	cf.Config.Labels = map[string]string{"org.opencontainers.image.source": "https://github.com/bgplb/bgplb"}
	img, err = mutate.ConfigFile(img, cf)
	if err != nil {
		return fmt.Errorf("setting config: %w", err)
	}

	dir, err := os.MkdirTemp("", "bgplb-image-*")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	p, err := layout.Write(dir, empty.Index)
	if err != nil {
		return fmt.Errorf("creating OCI layout: %w", err)
	}
	if err := p.AppendImage(img, layout.WithAnnotations(map[string]string{
		"org.opencontainers.image.ref.name": ref,
		"io.containerd.image.name":          ref,
	})); err != nil {
		return fmt.Errorf("writing image: %w", err)
	}
	if err := tarDir(dir, out); err != nil {
		return err
	}
	d, _ := img.Digest()
	fmt.Printf("image: wrote %s (%s, %s)\n", out, ref, d)
	return nil
}

// rootfs is the image's only layer: the binary, and passwd/group entries so
// the non-root user has a name.
func rootfs(exe []byte, name string) ([]byte, error) {
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	files := []struct {
		name string
		mode int64
		data []byte
	}{
		{"etc/passwd", 0o644, []byte("root:x:0:0:root:/root:/sbin/nologin\nnonroot:x:65532:65532:nonroot:/home/nonroot:/sbin/nologin\n")},
		{"etc/group", 0o644, []byte("root:x:0:\nnonroot:x:65532:\n")},
		{name, 0o755, exe},
	}
	for _, dir := range []string{"etc/", "tmp/"} {
		mode := int64(0o755)
		if dir == "tmp/" {
			mode = 0o1777
		}
		if err := tw.WriteHeader(&tar.Header{Typeflag: tar.TypeDir, Name: dir, Mode: mode, ModTime: time.Unix(0, 0)}); err != nil {
			return nil, err
		}
	}
	for _, f := range files {
		if err := tw.WriteHeader(&tar.Header{Typeflag: tar.TypeReg, Name: f.name, Mode: f.mode, Size: int64(len(f.data)), ModTime: time.Unix(0, 0)}); err != nil {
			return nil, err
		}
		if _, err := tw.Write(f.data); err != nil {
			return nil, err
		}
	}
	if err := tw.Close(); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

// tarDir writes the OCI layout directory as one tar file.
func tarDir(dir, out string) error {
	if err := os.MkdirAll(filepath.Dir(out), 0o755); err != nil {
		return err
	}
	f, err := os.Create(out)
	if err != nil {
		return err
	}
	tw := tar.NewWriter(f)
	err = filepath.Walk(dir, func(path string, info os.FileInfo, err error) error {
		if err != nil || path == dir {
			return err
		}
		rel, _ := filepath.Rel(dir, path)
		hdr, err := tar.FileInfoHeader(info, "")
		if err != nil {
			return err
		}
		hdr.Name = filepath.ToSlash(rel)
		if info.IsDir() {
			hdr.Name += "/"
		}
		hdr.ModTime = time.Unix(0, 0)
		if err := tw.WriteHeader(hdr); err != nil {
			return err
		}
		if info.IsDir() {
			return nil
		}
		data, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		_, err = tw.Write(data)
		return err
	})
	if err != nil {
		f.Close()
		return fmt.Errorf("writing %s: %w", out, err)
	}
	if err := tw.Close(); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}
