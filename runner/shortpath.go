package runner

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
)

// ShortPathMax is the longest directory ShortPath returns as it is: a unix
// socket path (at most 108 bytes) must fit below it with its file name.
const ShortPathMax = 60

// ShortPath makes dir and returns a short path to it: dir itself when it is
// shorter than ShortPathMax, else a symlink linkDir/<prefix>* to it (Bazel's
// TEST_TMPDIR is too deep for the unix sockets of a state directory), and
// a function that removes the link. It first removes the dangling
// <prefix>* links in linkDir that earlier, SIGKILLed callers left (their
// directory went with their TEST_TMPDIR); live links, and anything that is
// not a link, stay.
func ShortPath(dir, linkDir, prefix string) (string, func(), error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return "", nil, err
	}
	if len(dir) < ShortPathMax {
		return dir, func() {}, nil
	}
	sweepLinks(linkDir, prefix)
	link, err := os.MkdirTemp(linkDir, prefix)
	if err != nil {
		return "", nil, err
	}
	if err := os.Remove(link); err != nil {
		return "", nil, err
	}
	if err := os.Symlink(dir, link); err != nil {
		return "", nil, err
	}
	return link, func() { os.Remove(link) }, nil
}

// sweepLinks removes the dangling prefix* symlinks in linkDir.
func sweepLinks(linkDir, prefix string) {
	links, _ := filepath.Glob(filepath.Join(linkDir, prefix+"*"))
	for _, l := range links {
		if fi, err := os.Lstat(l); err != nil || fi.Mode()&os.ModeSymlink == 0 {
			continue
		}
		if _, err := os.Stat(l); errors.Is(err, fs.ErrNotExist) {
			os.Remove(l)
		}
	}
}
