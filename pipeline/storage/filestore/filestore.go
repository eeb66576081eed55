package filestore

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"math"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	"sluice/pipeline/storage"
)

// tmpPrefix starts the names of files being written. The leading dot keeps
// them out of casual listings; List and ListDirs skip them explicitly.
const tmpPrefix = ".sluice-tmp-"

// Bucket is a storage.Bucket over a local folder.
type Bucket struct {
	root string // absolute, cleaned
}

var (
	_ storage.Bucket    = (*Bucket)(nil)
	_ storage.Copier    = (*Bucket)(nil)
	_ storage.Composer  = (*Bucket)(nil)
	_ storage.FileMover = (*Bucket)(nil)
)

// New returns a Bucket rooted at dir. The folder need not exist yet: Put
// creates folders as needed, and reads of a missing folder find nothing.
func New(dir string) (*Bucket, error) {
	root, err := filepath.Abs(dir)
	if err != nil {
		return nil, fmt.Errorf("resolve %s: %w", dir, err)
	}
	return &Bucket{root: root}, nil
}

// Location returns file:// followed by the absolute folder path.
func (b *Bucket) Location() string {
	return "file://" + filepath.ToSlash(b.root)
}

// Root returns the absolute folder the bucket is rooted at.
func (b *Bucket) Root() string { return b.root }

// path turns a key into a file path, refusing keys that would escape the
// root or name a temporary file.
func (b *Bucket) path(key string) (string, error) {
	if !fs.ValidPath(key) || key == "." {
		return "", fmt.Errorf("invalid key %q", key)
	}
	if strings.HasPrefix(path.Base(key), tmpPrefix) {
		return "", fmt.Errorf("invalid key %q: %s names are reserved for temporary files", key, tmpPrefix)
	}
	return filepath.Join(b.root, filepath.FromSlash(key)), nil
}

// notExist reports whether err means "no object at this key": a missing
// file, or a path through a file (ENOTDIR).
func notExist(err error) bool {
	return errors.Is(err, fs.ErrNotExist) || errors.Is(err, syscall.ENOTDIR)
}

// Get opens the object at key.
func (b *Bucket) Get(ctx context.Context, key string) (io.ReadCloser, error) {
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("get %s: %w", key, err)
	}
	p, err := b.path(key)
	if err != nil {
		return nil, fmt.Errorf("get %s: %w", key, err)
	}
	f, err := os.Open(p)
	if notExist(err) {
		return nil, fmt.Errorf("get %s: %w", key, storage.ErrNotExist)
	}
	if err != nil {
		return nil, fmt.Errorf("get %s: %w", key, err)
	}
	// A folder is not an object, as on S3.
	if fi, err := f.Stat(); err != nil || !fi.Mode().IsRegular() {
		f.Close()
		if err != nil {
			return nil, fmt.Errorf("get %s: %w", key, err)
		}
		return nil, fmt.Errorf("get %s: %w", key, storage.ErrNotExist)
	}
	return f, nil
}

// GetRange opens length bytes of the object at key from offset.
func (b *Bucket) GetRange(ctx context.Context, key string, offset, length int64) (io.ReadCloser, error) {
	rc, err := b.Get(ctx, key)
	if err != nil {
		return nil, err
	}
	f := rc.(*os.File)
	if length < 0 {
		length = math.MaxInt64 - offset
	}
	return struct {
		io.Reader
		io.Closer
	}{io.NewSectionReader(f, offset, length), f}, nil
}

// Copy stores the object at src under dst too: a hard link renamed into
// place, so that publishing a staged file moves no bytes (a copy where the
// folder's file system has no hard links). Objects are never written in
// place, only replaced, so the two names cannot affect each other.
func (b *Bucket) Copy(ctx context.Context, src, dst string) error {
	sp, err := b.path(src)
	if err != nil {
		return fmt.Errorf("copy %s: %w", src, err)
	}
	dp, err := b.path(dst)
	if err != nil {
		return fmt.Errorf("copy to %s: %w", dst, err)
	}
	if fi, err := os.Stat(sp); notExist(err) || (err == nil && !fi.Mode().IsRegular()) {
		return fmt.Errorf("copy %s: %w", src, storage.ErrNotExist)
	}
	f, err := b.createTemp(filepath.Dir(dp))
	if err != nil {
		return fmt.Errorf("copy to %s: %w", dst, err)
	}
	tmp := f.Name()
	f.Close()
	os.Remove(tmp)
	if err := os.Link(sp, tmp); err == nil {
		err := os.Rename(tmp, dp)
		// When dst is already a link to src's file (a retried publish),
		// rename(2) between two links of one inode does nothing and
		// succeeds, leaving tmp: a hidden second name for the whole file
		// that listing and deletion never see. The temp name is this
		// call's own, so removing it is always right; after a rename that
		// moved it, there is nothing to remove.
		if rerr := os.Remove(tmp); rerr != nil && !notExist(rerr) && err == nil {
			err = rerr
		}
		if err != nil {
			return fmt.Errorf("copy to %s: %w", dst, err)
		}
		return nil
	}
	rc, err := b.Get(ctx, src)
	if err != nil {
		return fmt.Errorf("copy %s: %w", src, err)
	}
	defer rc.Close()
	return b.Put(ctx, dst, rc)
}

// Stat describes the object at key.
func (b *Bucket) Stat(ctx context.Context, key string) (storage.ObjectInfo, error) {
	if err := ctx.Err(); err != nil {
		return storage.ObjectInfo{}, fmt.Errorf("stat %s: %w", key, err)
	}
	p, err := b.path(key)
	if err != nil {
		return storage.ObjectInfo{}, fmt.Errorf("stat %s: %w", key, err)
	}
	fi, err := os.Stat(p)
	if notExist(err) || (err == nil && !fi.Mode().IsRegular()) {
		return storage.ObjectInfo{}, fmt.Errorf("stat %s: %w", key, storage.ErrNotExist)
	}
	if err != nil {
		return storage.ObjectInfo{}, fmt.Errorf("stat %s: %w", key, err)
	}
	return info(key, fi), nil
}

func info(key string, fi fs.FileInfo) storage.ObjectInfo {
	return storage.ObjectInfo{
		Key:     key,
		Size:    fi.Size(),
		ModTime: fi.ModTime(),
		ETag:    strconv.FormatInt(fi.Size(), 16) + "-" + strconv.FormatInt(fi.ModTime().UnixNano(), 16),
	}
}

// Put writes body to a temporary file next to the target and renames it
// into place.
func (b *Bucket) Put(ctx context.Context, key string, body io.Reader) error {
	err := b.replace(ctx, key, func(f *os.File) error {
		if src, ok := body.(*os.File); ok {
			// A local file (a task's spooled output) is copied by the
			// kernel (copy_file_range), not through this process.
			_, err := io.Copy(f, src)
			return err
		}
		_, err := io.Copy(f, ctxReader{ctx: ctx, r: body})
		return err
	})
	if err != nil {
		return fmt.Errorf("put %s: %w", key, err)
	}
	return nil
}

// MoveFile renames the file at path into place when it is on the folder's
// file system (after making it durable and readable, as Put does), and
// copies it otherwise.
func (b *Bucket) MoveFile(ctx context.Context, key, path string) error {
	p, err := b.path(key)
	if err != nil {
		return fmt.Errorf("put %s: %w", key, err)
	}
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("put %s: %w", key, err)
	}
	f, err := os.OpenFile(path, os.O_RDWR, 0)
	if err != nil {
		return fmt.Errorf("put %s: %w", key, err)
	}
	if err := finishFile(f); err != nil {
		return fmt.Errorf("put %s: %w", key, err)
	}
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		return fmt.Errorf("put %s: %w", key, err)
	}
	if err := os.Rename(path, p); err == nil {
		return nil
	}
	// Another file system (EXDEV), or anything else rename refuses:
	// copy, as Put does.
	src, err := os.Open(path)
	if err != nil {
		return fmt.Errorf("put %s: %w", key, err)
	}
	defer src.Close()
	return b.Put(ctx, key, src)
}

// Compose writes the sections to a temporary file next to the target and
// renames it into place. Ranges of other files are copied by the kernel
// (copy_file_range, which io.Copy uses between files), without passing
// through this process and, on file systems that share extents, without
// copying them at all.
func (b *Bucket) Compose(ctx context.Context, key string, sections []storage.Section) error {
	err := b.replace(ctx, key, func(f *os.File) error {
		for _, s := range sections {
			if err := ctx.Err(); err != nil {
				return err
			}
			if s.Key == "" {
				if _, err := f.Write(s.Data); err != nil {
					return err
				}
				continue
			}
			if err := b.copyRange(f, s); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("compose %s: %w", key, err)
	}
	return nil
}

// copyRange appends section s of another file to f.
func (b *Bucket) copyRange(f *os.File, s storage.Section) error {
	p, err := b.path(s.Key)
	if err != nil {
		return err
	}
	src, err := os.Open(p)
	if notExist(err) {
		return fmt.Errorf("%s: %w", s.Key, storage.ErrNotExist)
	}
	if err != nil {
		return err
	}
	defer src.Close()
	if _, err := src.Seek(s.Offset, io.SeekStart); err != nil {
		return err
	}
	n, err := io.Copy(f, &io.LimitedReader{R: src, N: s.Length})
	if err != nil {
		return fmt.Errorf("copy from %s: %w", s.Key, err)
	}
	if n != s.Length {
		return fmt.Errorf("%s: %d bytes at %d, want %d: %w", s.Key, n, s.Offset, s.Length, storage.ErrShortSection)
	}
	return nil
}

// replace writes the object at key with fill, into a temporary file next
// to the target that is renamed into place once complete.
func (b *Bucket) replace(ctx context.Context, key string, fill func(*os.File) error) error {
	p, err := b.path(key)
	if err != nil {
		return err
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	f, err := b.createTemp(filepath.Dir(p))
	if err != nil {
		return err
	}
	tmp := f.Name()
	err = fill(f)
	if err == nil {
		err = finishFile(f)
	} else {
		f.Close()
	}
	if err == nil {
		err = os.Rename(tmp, p)
	}
	if err != nil {
		_ = os.Remove(tmp)
		// Do not leave behind folders made for this object.
		b.removeEmptyDirs(filepath.Dir(p))
		return err
	}
	return nil
}

// createTemp creates a temporary file in dir, creating dir first. A
// concurrent Delete may remove an emptied folder of the path at any moment,
// inside MkdirAll (between making a parent and its child) or between
// MkdirAll and CreateTemp, so a vanished folder is retried.
func (b *Bucket) createTemp(dir string) (*os.File, error) {
	var err error
	for range 20 {
		var f *os.File
		if err = os.MkdirAll(dir, 0o755); err == nil {
			f, err = os.CreateTemp(dir, tmpPrefix+"*")
		}
		if err == nil {
			return f, nil
		}
		if !errors.Is(err, fs.ErrNotExist) {
			return nil, err
		}
	}
	return nil, err
}

// finishFile makes a written file durable and readable and closes it,
// ready to be renamed.
func finishFile(f *os.File) error {
	// Sync before rename so a crash cannot leave a renamed but empty file.
	err := f.Sync()
	if err == nil {
		// CreateTemp makes files 0600; objects should read like any file.
		err = f.Chmod(0o644)
	}
	if err == nil {
		// The kernel stamps mtime with a coarse clock (milliseconds), so
		// two same-size writes in quick succession could share an ETag.
		// time.Now has nanosecond resolution.
		now := time.Now()
		err = os.Chtimes(f.Name(), now, now)
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	return err
}

// ctxReader stops a long copy once ctx is done.
type ctxReader struct {
	ctx context.Context
	r   io.Reader
}

func (r ctxReader) Read(p []byte) (int, error) {
	if err := r.ctx.Err(); err != nil {
		return 0, err
	}
	return r.r.Read(p)
}

// Delete removes the object at key, then any folders that became empty
// (up to, not including, the root).
func (b *Bucket) Delete(ctx context.Context, key string) error {
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("delete %s: %w", key, err)
	}
	p, err := b.path(key)
	if err != nil {
		return fmt.Errorf("delete %s: %w", key, err)
	}
	fi, err := os.Lstat(p)
	if notExist(err) || (err == nil && fi.IsDir()) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("delete %s: %w", key, err)
	}
	if err := os.Remove(p); err != nil && !notExist(err) {
		return fmt.Errorf("delete %s: %w", key, err)
	}
	b.removeEmptyDirs(filepath.Dir(p))
	return nil
}

// removeEmptyDirs removes dir and its parents while they are empty, up to
// but not including the root.
func (b *Bucket) removeEmptyDirs(dir string) {
	for ; dir != b.root && strings.HasPrefix(dir, b.root); dir = filepath.Dir(dir) {
		// Remove fails on a folder that still has entries: that ends the walk.
		if os.Remove(dir) != nil {
			return
		}
	}
}

// List calls fn for each object whose key starts with prefix, in lexical
// key order, without reading the whole tree into memory.
func (b *Bucket) List(ctx context.Context, prefix string, fn func(storage.ObjectInfo) error) error {
	if err := b.walk(ctx, "", prefix, fn); err != nil {
		return fmt.Errorf("list %s: %w", prefix, err)
	}
	return nil
}

// walk lists the folder at dirKey ("" for the root, else ending in "/").
func (b *Bucket) walk(ctx context.Context, dirKey, prefix string, fn func(storage.ObjectInfo) error) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	entries, err := b.readDir(dirKey)
	if err != nil {
		return err
	}
	for _, e := range entries {
		key := dirKey + e.name
		if e.dir {
			// Descend only where keys can match: the folder lies inside the
			// prefix, or the prefix reaches into the folder.
			sub := key + "/"
			if strings.HasPrefix(sub, prefix) || strings.HasPrefix(prefix, sub) {
				if err := b.walk(ctx, sub, prefix, fn); err != nil {
					return err
				}
			}
			continue
		}
		if !strings.HasPrefix(key, prefix) {
			continue
		}
		if err := fn(info(key, e.info)); err != nil {
			return err
		}
	}
	return nil
}

type entry struct {
	name string
	dir  bool
	info fs.FileInfo // for files
}

// sortKey orders entries the way their keys sort: every key below folder
// "a" starts with "a/", so "a-b" (0x2d) comes before it and "a0" after.
func (e entry) sortKey() string {
	if e.dir {
		return e.name + "/"
	}
	return e.name
}

// readDir returns the folder's files and subfolders ordered by sortKey,
// skipping temporary files and anything that is neither (sockets, dangling
// links). Symbolic links are followed. A missing folder is empty.
func (b *Bucket) readDir(dirKey string) ([]entry, error) {
	dir := filepath.Join(b.root, filepath.FromSlash(dirKey))
	des, err := os.ReadDir(dir)
	if notExist(err) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	entries := make([]entry, 0, len(des))
	for _, de := range des {
		if strings.HasPrefix(de.Name(), tmpPrefix) {
			continue
		}
		fi, err := de.Info()
		if notExist(err) {
			continue // removed since ReadDir
		}
		if err != nil {
			return nil, err
		}
		if fi.Mode()&fs.ModeSymlink != 0 {
			if fi, err = os.Stat(filepath.Join(dir, de.Name())); err != nil {
				continue
			}
		}
		switch {
		case fi.IsDir():
			entries = append(entries, entry{name: de.Name(), dir: true})
		case fi.Mode().IsRegular():
			entries = append(entries, entry{name: de.Name(), info: fi})
		}
	}
	slices.SortFunc(entries, func(x, y entry) int { return strings.Compare(x.sortKey(), y.sortKey()) })
	return entries, nil
}

// ListDirs returns the subfolders directly below prefix, each ending in "/".
// Like an S3 listing with delimiter "/", a prefix that does not end in "/"
// matches folder names starting with its last part.
func (b *Bucket) ListDirs(ctx context.Context, prefix string) ([]string, error) {
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("list dirs %s: %w", prefix, err)
	}
	dirKey := prefix[:strings.LastIndex(prefix, "/")+1]
	if dirKey != "" && !fs.ValidPath(strings.TrimSuffix(dirKey, "/")) {
		return nil, nil // no key lies below "..", "a//" and the like
	}
	entries, err := b.readDir(dirKey)
	if err != nil {
		return nil, fmt.Errorf("list dirs %s: %w", prefix, err)
	}
	var dirs []string
	for _, e := range entries {
		if sub := dirKey + e.name + "/"; e.dir && strings.HasPrefix(sub, prefix) {
			dirs = append(dirs, sub)
		}
	}
	return dirs, nil
}
