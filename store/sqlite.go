package store

import (
	"bytes"
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/url"
	"os"
	"path/filepath"
	"runtime/debug"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	_ "modernc.org/sqlite" // registers the pure-Go "sqlite" driver

	"github.com/plcwatch/plcwatch/snapshots"
)

// applicationID marks a SQLite file as a plcwatch store ("PLCW").
const applicationID = 0x504c4357

// pageSize is the page size of a new store, in bytes. A manifest delta of a
// large snapshot (1% of 5,000 items: 50 keys, 1.6 KB) fits in a page of the
// snapshots table (a WITHOUT ROWID table keeps about a quarter of a page in
// place, the rest in overflow pages of its own); at SQLite's default of
// 4,096 bytes half the table was unused overflow space.
const pageSize = 16384

// sqliteHeader starts every SQLite 3 database file.
const sqliteHeader = "SQLite format 3\x00"

// migrations are applied in order, each in the same transaction as the
// user_version bump; the schema version is the number applied. Append only:
// never edit one that has shipped.
var migrations = []string{
	// 1: records (the hash chains), blobs (item content by SHA-256) and
	// snapshots (manifests by snapshot digest).
	`
CREATE TABLE records (
	device TEXT NOT NULL,
	seq    INTEGER NOT NULL,
	type   TEXT NOT NULL,
	time   TEXT NOT NULL,
	body   TEXT NOT NULL,
	prev   TEXT NOT NULL,
	digest TEXT NOT NULL,
	PRIMARY KEY (device, seq)
);
CREATE INDEX records_type ON records (type, device, seq);
CREATE INDEX records_snapshot_id ON records (json_extract(body, '$.id')) WHERE type = 'snapshot';
CREATE INDEX records_snapshot_label ON records (device, json_extract(body, '$.label'), seq) WHERE type = 'snapshot';
CREATE INDEX records_snapshot_complete ON records (device, json_extract(body, '$.complete'), seq) WHERE type = 'snapshot';
CREATE TABLE blobs (
	hash BLOB PRIMARY KEY,
	data BLOB NOT NULL
) WITHOUT ROWID;
CREATE TABLE snapshots (
	digest TEXT PRIMARY KEY,
	header BLOB NOT NULL,
	items  BLOB NOT NULL
) WITHOUT ROWID;
PRAGMA application_id = 1347175255;
`,
	// 2: counters outside the chains; "heads_logged" counts the chain heads
	// written to the alert log, so that a deleted or shortened alert log is
	// a finding of verify.
	`
CREATE TABLE counters (
	name  TEXT PRIMARY KEY,
	value INTEGER NOT NULL
) WITHOUT ROWID;
`,
	// 3: derived state for hot paths (see derived.go).
	migrationAlertSeen,
	// 4: manifests stored as deltas against their parent (see manifest.go).
	migrationDeltas,
}

// SchemaVersion is the schema version this build writes.
var SchemaVersion = len(migrations)

// Queries shared with the query-plan test. Lookups through the expression
// indexes name them: without statistics the planner prefers records_type,
// which would scan every snapshot record of every device.
const (
	qHead         = `SELECT seq, digest FROM records WHERE device = ? ORDER BY seq DESC LIMIT 1`
	qLatest       = `SELECT body FROM records WHERE type = 'snapshot' AND device = ? ORDER BY seq DESC LIMIT 1`
	qLatestDone   = `SELECT body FROM records INDEXED BY records_snapshot_complete WHERE type = 'snapshot' AND device = ? AND json_extract(body, '$.complete') = 1 ORDER BY seq DESC LIMIT 1`
	qLabel        = `SELECT body FROM records INDEXED BY records_snapshot_label WHERE type = 'snapshot' AND device = ? AND json_extract(body, '$.label') = ? ORDER BY seq DESC LIMIT 1`
	qByIDRange    = `SELECT body FROM records INDEXED BY records_snapshot_id WHERE type = 'snapshot' AND json_extract(body, '$.id') >= ? AND json_extract(body, '$.id') < ?`
	qNewestOfType = `SELECT ` + recordCols + ` FROM records WHERE type = ? AND device = ? ORDER BY seq DESC LIMIT 1`
	qOfType       = `SELECT ` + recordCols + ` FROM records WHERE type = ? AND device = ? ORDER BY seq`
	qOfTypeAll    = `SELECT ` + recordCols + ` FROM records WHERE type = ? ORDER BY device, seq`
	qManifest     = `SELECT header, items FROM snapshots WHERE digest = ?`
)

const recordCols = `device, seq, type, time, body, prev, digest`

// DB is the SQLite evidence store: one file, no server, safe for several
// goroutines and several processes (a daemon and CLI commands) at once.
// Appends run in BEGIN IMMEDIATE transactions, so each chain grows one
// record at a time whoever writes.
type DB struct {
	path     string
	db       *sql.DB
	readOnly bool
	version  int        // schema version of the file (read-only stores may be older)
	mu       sync.Mutex // serializes this handle's writers; SQLite locks serialize processes
	// last is the manifest this handle wrote last (guarded by mu): the
	// parent of the device's next snapshot when devices are written one
	// after another, which the writer then need not read back.
	last *keyCache
	// mapped: SQLite reads the file through a memory map (MapReads).
	mapped bool
	// faulted: a read through the map faulted; the SQLite handle is
	// left as the fault left it and never used again (see guard).
	faulted atomic.Bool
}

var _ Store = (*DB)(nil)

type options struct {
	busyTimeout time.Duration
	readOnly    bool
	mapReads    bool
}

// Option tunes Open.
type Option func(*options)

// WithBusyTimeout sets how long a writer waits for another writer (in this
// or another process) before failing; default 30s.
func WithBusyTimeout(d time.Duration) Option { return func(o *options) { o.busyTimeout = d } }

// ReadOnly opens an existing store for reading only (verify, show, alerts):
// the file must exist (a missing file is an error wrapping os.ErrNotExist
// that names the path, an empty one ErrNotStore) and is opened by SQLite
// read-only, so a store on a read-only filesystem or a read-only file (an
// auditor's copy) works; writes fail with ErrReadOnly. A store of an older
// schema is read as it is, without migrating it.
func ReadOnly() Option { return func(o *options) { o.readOnly = true } }

// MapReads makes a read-only store (with ReadOnly) read its file through a
// memory map of up to mapSize bytes (SQLite's PRAGMA mmap_size) instead of
// one pread per page: a short-lived command that reads a few hundred items
// scattered over the file (diff, show) spends most of its store time
// copying pages otherwise. A map turns a failed read into a memory fault
// rather than an error code (the file truncated by another process while
// a statement runs, or a disk error): the reads that may touch the map
// (Resolve, ResolveDiff) catch the fault and return an error wrapping
// ErrHostIO, and the handle is not used again. verify keeps plain reads,
// so a damaged disk gives it an error to report per page, not a fault.
// Without ReadOnly it has no effect.
func MapReads() Option { return func(o *options) { o.mapReads = true } }

// mapSize is the largest memory map MapReads asks SQLite for: 1 GiB, or
// 256 MiB where addresses are 32 bits wide. A file larger than the map is
// read beyond it with pread as before, and SQLite reads with pread when
// mmap fails.
const mapSize = 1 << (28 + 2*(strconv.IntSize/64))

// guard runs read, which may touch the memory map of a MapReads store,
// turning a memory fault into an error wrapping ErrHostIO: SQLite's state
// after a fault inside it is unknown, so the handle is marked faulted and
// every later call of guard, and Close, leaves SQLite alone. Other panics
// are not recovered.
func (d *DB) guard(read func() error) (err error) {
	if !d.mapped {
		return read()
	}
	if d.faulted.Load() {
		return fmt.Errorf("store %s: an earlier read through its memory map faulted: %w", d.path, ErrHostIO)
	}
	defer debug.SetPanicOnFault(debug.SetPanicOnFault(true))
	defer func() {
		r := recover()
		if r == nil {
			return
		}
		f, ok := r.(interface{ Addr() uintptr })
		if !ok {
			panic(r)
		}
		d.faulted.Store(true)
		err = fmt.Errorf("store %s: reading it through a memory map faulted at address %#x (the file shrank while it was read, or the disk failed a read): %w", d.path, f.Addr(), ErrHostIO)
	}()
	return read()
}

// Open opens the store at path, creating it (mode 0600, whatever the umask)
// when it does not exist, and applies pending schema migrations. A file that
// is not a plcwatch store gives an error wrapping ErrNotStore and is never
// written to; a store from a newer plcwatch gives ErrNewerSchema.
func Open(path string, opts ...Option) (*DB, error) {
	o := options{busyTimeout: 30 * time.Second}
	for _, f := range opts {
		f(&o)
	}
	if path == "" || strings.Contains(path, "?") || strings.HasPrefix(path, "file:") || path == ":memory:" {
		return nil, fmt.Errorf("opening store %q: want a plain file path (without '?')", path)
	}
	if err := prepareFile(path, o.readOnly); err != nil {
		return nil, err
	}
	if o.readOnly {
		return openReadOnly(path, o)
	}
	dsn := fmt.Sprintf("%s?_pragma=busy_timeout(%d)&_pragma=synchronous(FULL)&_txlock=immediate", path, o.busyTimeout.Milliseconds())
	db, err := sql.Open("sqlite", dsn)
	if err != nil {
		return nil, fmt.Errorf("opening store %s: %w", path, err)
	}
	d := &DB{path: path, db: db, readOnly: o.readOnly}
	// Several processes may create the same new store at once; the one that
	// switches it to WAL or migrates it holds an exclusive lock for a moment,
	// which the others see as "locked" even with a busy timeout. Retry those.
	deadline := time.Now().Add(o.busyTimeout)
	for delay := 10 * time.Millisecond; ; delay = min(2*delay, 500*time.Millisecond) {
		err = d.init()
		if err == nil {
			return d, nil
		}
		if !isBusy(err) || time.Now().After(deadline) {
			db.Close()
			return nil, err
		}
		time.Sleep(delay)
	}
}

// openReadOnly opens path with SQLite's mode=ro. A WAL store whose -shm
// file cannot be created (a read-only directory or filesystem) is opened
// again as immutable: nothing can change it there. Immutable, SQLite reads
// the main file alone, so a non-empty -wal file there is an error naming
// it rather than records silently missing.
func openReadOnly(path string, o options) (*DB, error) {
	u := (&url.URL{Scheme: "file", Opaque: (&url.URL{Path: path}).EscapedPath()}).String()
	var firstErr error
	for _, extra := range []string{"", "&immutable=1"} {
		if o.mapReads {
			extra += fmt.Sprintf("&_pragma=mmap_size(%d)", mapSize)
		}
		// mode=ro opens the file read-only in SQLite (a write fails with
		// SQLITE_READONLY); PRAGMA query_only would add nothing but a
		// statement to every connection's start.
		dsn := fmt.Sprintf("%s?mode=ro&_pragma=busy_timeout(%d)%s", u, o.busyTimeout.Milliseconds(), extra)
		db, err := sql.Open("sqlite", dsn)
		if err != nil {
			return nil, fmt.Errorf("opening store %s read-only: %w", path, err)
		}
		d := &DB{path: path, db: db, readOnly: true, mapped: o.mapReads}
		err = d.guard(d.init) // its first queries read the schema through the map
		if err == nil {
			return d, nil
		}
		d.Close()
		if (errors.Is(err, ErrNotStore) || errors.Is(err, ErrHostIO)) && firstErr == nil && !writableDir(path) {
			// Opened as immutable, SQLite reads the main file alone: records
			// in a -wal file (a copy of a live store taken without its -shm
			// file) would be silently missing.
			if st, statErr := os.Stat(path + "-wal"); statErr == nil && st.Size() > 0 {
				return nil, fmt.Errorf("opening store %s read-only: its folder does not accept new files, and %s-wal (%d bytes) may hold records not yet in the store file, which SQLite reads only with a -shm file next to it; copy the store with its -shm file, or open it in a writable folder: %w", path, path, st.Size(), err)
			}
			firstErr = err
			continue
		}
		if firstErr != nil {
			return nil, firstErr
		}
		return nil, err
	}
	return nil, firstErr
}

// writableDir reports whether the store's directory accepts new files (the
// -shm file of a WAL store).
func writableDir(path string) bool {
	f, err := os.CreateTemp(filepath.Dir(path), ".plcwatch-probe-*")
	if err != nil {
		return false
	}
	name := f.Name()
	f.Close()
	os.Remove(name)
	return true
}

// prepareFile creates a missing store file with mode 0600 and checks that
// an existing one starts with the SQLite header, before SQLite touches it.
// SQLite creates the -wal and -shm files with the main file's mode.
func prepareFile(path string, readOnly bool) error {
	if !readOnly {
		f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE|os.O_EXCL, 0o600)
		if err == nil {
			defer f.Close()
			if err := f.Chmod(0o600); err != nil { // whatever the umask
				return fmt.Errorf("creating store %s: %w", path, err)
			}
			return nil
		}
		if !errors.Is(err, os.ErrExist) {
			return fmt.Errorf("creating store %s: %w", path, err)
		}
	}
	f, err := os.Open(path)
	if errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("opening store %s: no such file (commands that only read never create a store; check store.path): %w", path, err)
	}
	if err != nil {
		return fmt.Errorf("opening store %s: %w", path, err)
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return fmt.Errorf("opening store %s: %w", path, err)
	}
	if !st.Mode().IsRegular() {
		return fmt.Errorf("opening store %s: it is a %s, want a SQLite file: %w", path, fileKind(st.Mode()), ErrNotStore)
	}
	if st.Size() == 0 {
		if readOnly {
			return fmt.Errorf("opening store %s: the file is empty: %w", path, ErrNotStore)
		}
		// Created by another process an instant ago, or empty (touch):
		// SQLite initializes it, and evidence is readable by its owner
		// only, so the file (and the -wal and -shm files SQLite makes with
		// its mode) becomes 0600 whatever it was made with.
		if st.Mode().Perm()&0o077 != 0 {
			if err := os.Chmod(path, 0o600); err != nil {
				return fmt.Errorf("opening store %s: making the empty file readable by its owner only: %w", path, err)
			}
		}
		return nil
	}
	head := make([]byte, len(sqliteHeader))
	if _, err := io.ReadFull(f, head); err != nil || !bytes.Equal(head, []byte(sqliteHeader)) {
		return fmt.Errorf("opening store %s: the file does not start with the SQLite 3 header %q (damaged, or not a store): %w", path, strings.TrimSuffix(sqliteHeader, "\x00"), ErrNotStore)
	}
	if !readOnly {
		// An intact store on a read-only filesystem or in a read-only file
		// is a host problem, not a damaged store: say so before SQLite does.
		w, err := os.OpenFile(path, os.O_RDWR, 0)
		if err != nil {
			return fmt.Errorf("opening store %s for writing (commands that only read open it read-only): %w", path, err)
		}
		w.Close()
		if !writableDir(path) {
			return fmt.Errorf("opening store %s for writing: its folder does not accept new files (read-only filesystem?), and SQLite needs its -wal file there: %w", path, ErrReadOnly)
		}
	}
	return nil
}

// init checks the file is a plcwatch store (before anything is written to
// it), switches it to WAL and migrates it.
func (d *DB) init() error {
	ctx := context.Background()
	v, err := d.checkIdentity(ctx, d.db)
	if err != nil {
		return err
	}
	if d.readOnly {
		if v < 1 {
			return fmt.Errorf("opening store %s read-only: it was never initialized (schema version %d): %w", d.path, v, ErrNotStore)
		}
		d.version = v
		return nil
	}
	// A new store gets pages of pageSize bytes (set before anything is
	// written; an existing store keeps its own).
	var objects int
	if err := d.db.QueryRowContext(ctx, "SELECT count(*) FROM sqlite_schema").Scan(&objects); err != nil {
		return d.damaged(err)
	}
	if objects == 0 {
		if _, err := d.db.ExecContext(ctx, fmt.Sprintf("PRAGMA page_size = %d", pageSize)); err != nil {
			return d.damaged(err)
		}
	}
	var mode string
	if err := d.db.QueryRowContext(ctx, "PRAGMA journal_mode = WAL").Scan(&mode); err != nil {
		return d.damaged(err)
	}
	if !strings.EqualFold(mode, "wal") {
		return fmt.Errorf("opening store %s: journal mode is %q, could not switch to WAL", d.path, mode)
	}
	if err := d.migrate(ctx); err != nil {
		return err
	}
	d.version = SchemaVersion
	return nil
}

type querier interface {
	QueryRowContext(ctx context.Context, q string, args ...any) *sql.Row
}

func pragmaInt(ctx context.Context, q querier, name string) (int, error) {
	var v int
	err := q.QueryRowContext(ctx, "PRAGMA "+name).Scan(&v)
	return v, err
}

// checkIdentity refuses SQLite files of other applications and stores of a
// newer schema, and returns the file's schema version (read once: each
// statement a store's opening runs is start-up time of every command).
func (d *DB) checkIdentity(ctx context.Context, q querier) (int, error) {
	app, err := pragmaInt(ctx, q, "application_id")
	if err != nil {
		return 0, d.damaged(err)
	}
	ver, err := pragmaInt(ctx, q, "user_version")
	if err != nil {
		return 0, d.damaged(err)
	}
	var tables int
	if err := q.QueryRowContext(ctx, "SELECT count(*) FROM sqlite_schema").Scan(&tables); err != nil {
		return 0, d.damaged(err)
	}
	if app != applicationID && (app != 0 || ver != 0 || tables != 0) {
		return 0, fmt.Errorf("opening store %s: SQLite database with application_id %#x, user_version %d and %d schema objects, want a plcwatch store (application_id %#x): %w", d.path, app, ver, tables, applicationID, ErrNotStore)
	}
	if ver > SchemaVersion {
		return 0, fmt.Errorf("opening store %s: schema version %d, this plcwatch knows up to %d; upgrade plcwatch: %w", d.path, ver, SchemaVersion, ErrNewerSchema)
	}
	return ver, nil
}

func (d *DB) damaged(err error) error {
	if hostIO(err) {
		return fmt.Errorf("opening store %s: %v: %w", d.path, err, ErrHostIO)
	}
	return fmt.Errorf("opening store %s: reading it as a SQLite database: %v (damaged, or not a store): %w", d.path, err, ErrNotStore)
}

// hostIO reports whether a SQLite error is the host's (an I/O error, a full
// disk, a file that cannot be opened or written) rather than the file's
// content: primary result codes SQLITE_IOERR (10), SQLITE_FULL (13),
// SQLITE_CANTOPEN (14), SQLITE_READONLY (8) and SQLITE_PERM (3).
func hostIO(err error) bool {
	var c interface{ Code() int }
	if !errors.As(err, &c) {
		return false
	}
	switch c.Code() & 0xff {
	case 3, 8, 10, 13, 14:
		return true
	}
	return false
}

// migrate applies pending migrations in one immediate transaction; several
// processes opening a new store at once apply them exactly once.
func (d *DB) migrate(ctx context.Context) error {
	return d.write(ctx, func(tx *sql.Tx) error {
		if _, err := d.checkIdentity(ctx, tx); err != nil {
			return err
		}
		ver, err := pragmaInt(ctx, tx, "user_version")
		if err != nil {
			return err
		}
		for i := ver; i < len(migrations); i++ {
			if _, err := tx.ExecContext(ctx, migrations[i]); err != nil {
				return fmt.Errorf("migrating store %s to schema version %d: %w", d.path, i+1, err)
			}
			if _, err := tx.ExecContext(ctx, fmt.Sprintf("PRAGMA user_version = %d", i+1)); err != nil {
				return fmt.Errorf("migrating store %s to schema version %d: %w", d.path, i+1, err)
			}
		}
		return nil
	})
}

// Path returns the store's file path.
func (d *DB) Path() string { return d.path }

// Close closes the store.
func (d *DB) Close() error {
	if d.faulted.Load() {
		// SQLite faulted inside a statement (see guard): its locks and
		// caches are in an unknown state, and the process ends soon
		// (MapReads is for short-lived commands), closing the file.
		return nil
	}
	if err := d.db.Close(); err != nil {
		return fmt.Errorf("closing store %s: %w", d.path, err)
	}
	return nil
}

// write runs fn in a BEGIN IMMEDIATE transaction and commits it.
func (d *DB) write(ctx context.Context, fn func(tx *sql.Tx) error) error {
	if d.readOnly {
		return fmt.Errorf("store %s: %w", d.path, ErrReadOnly)
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	tx, err := d.db.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("store %s: taking the write lock: %w", d.path, err)
	}
	if err := fn(tx); err != nil {
		tx.Rollback()
		return err
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("store %s: committing: %w", d.path, err)
	}
	return nil
}

// Append adds a record to the device's chain. Snapshot records are appended
// by PutSnapshot only, so that their content is always present.
func (d *DB) Append(ctx context.Context, device, typ string, at time.Time, body any) (Record, error) {
	if typ == TypeSnapshot {
		return Record{}, fmt.Errorf("appending to %s: snapshot records are written by PutSnapshot", device)
	}
	b, err := canonical(body)
	if err != nil {
		return Record{}, fmt.Errorf("appending %s record to %s: encoding the body: %w", typ, device, err)
	}
	var r Record
	err = d.write(ctx, func(tx *sql.Tx) error {
		r, err = appendTx(ctx, tx, device, typ, at, b)
		return err
	})
	return r, err
}

func appendTx(ctx context.Context, tx *sql.Tx, device, typ string, at time.Time, body []byte) (Record, error) {
	if err := ValidDevice(device); err != nil {
		return Record{}, fmt.Errorf("appending %s record: %w", typ, err)
	}
	if !ValidType(typ) {
		return Record{}, fmt.Errorf("appending to %s: record type %q, want one of %v", device, typ, Types)
	}
	if at.IsZero() {
		return Record{}, fmt.Errorf("appending %s record to %s: the time is zero", typ, device)
	}
	r := Record{Device: device, Type: typ, Time: at.UTC().Round(0), Body: body}
	err := tx.QueryRowContext(ctx, qHead, device).Scan(&r.Seq, &r.Prev)
	switch {
	case errors.Is(err, sql.ErrNoRows):
		r.Seq, r.Prev = 0, GenesisPrev
	case err != nil:
		return Record{}, fmt.Errorf("appending to %s: reading the chain head: %w", device, err)
	}
	r.Seq++
	r.Digest = r.ComputeDigest()
	_, err = tx.ExecContext(ctx, `INSERT INTO records (`+recordCols+`) VALUES (?, ?, ?, ?, ?, ?, ?)`,
		r.Device, r.Seq, r.Type, r.Time.Format(time.RFC3339Nano), string(r.Body), r.Prev, r.Digest)
	if err != nil {
		return Record{}, fmt.Errorf("appending %s record %d to %s: %w", typ, r.Seq, device, err)
	}
	if err := deriveTx(ctx, tx, r); err != nil {
		return Record{}, err
	}
	return r, nil
}

// PutSnapshot stores the snapshot's content, each item once, and appends its
// record, preceded by a rules record when rules differ from the device's
// last rules record. Both records take the snapshot's TakenAt as their time.
func (d *DB) PutSnapshot(ctx context.Context, s *snapshots.Snapshot, rules json.RawMessage) ([]Record, error) {
	if s == nil {
		return nil, errors.New("storing a snapshot: nil snapshot")
	}
	m, err := split(s)
	if err != nil {
		return nil, fmt.Errorf("storing snapshot: %w", err)
	}
	var rulesBody []byte
	if len(rules) > 0 {
		var buf bytes.Buffer
		if err := json.Compact(&buf, rules); err != nil {
			return nil, fmt.Errorf("storing snapshot %s: rules are not valid JSON: %w", s.ID, err)
		}
		rulesBody = buf.Bytes()
	}
	ref, err := canonical(SnapshotRef{ID: s.ID, Digest: s.Digest, Label: s.Label, Complete: s.Status.Complete, RulesDigest: s.RulesDigest,
		Manifest: ManifestDigest(m.header, m.keys)})
	if err != nil {
		return nil, err
	}
	var recs []Record
	err = d.write(ctx, func(tx *sql.Tx) error {
		recs = recs[:0]
		// d.mu is held: the cache of the last manifest is this call's.
		last := d.last
		d.last = nil
		if rulesBody != nil {
			var last []byte
			err := tx.QueryRowContext(ctx, `SELECT body FROM records WHERE type = 'rules' AND device = ? ORDER BY seq DESC LIMIT 1`, s.Device).Scan(&last)
			if err != nil && !errors.Is(err, sql.ErrNoRows) {
				return fmt.Errorf("storing snapshot %s: reading the last rules: %w", s.ID, err)
			}
			if !bytes.Equal(last, rulesBody) {
				r, err := appendTx(ctx, tx, s.Device, TypeRules, s.TakenAt, rulesBody)
				if err != nil {
					return err
				}
				recs = append(recs, r)
			}
		}
		written, err := putContentTx(ctx, tx, s.Device, s.Digest, m, last)
		if err != nil {
			return fmt.Errorf("storing snapshot %s: %w", s.ID, err)
		}
		// Kept even if the commit fails: content is addressed by its
		// digest, and it is used only for a parent whose record names it.
		d.last = written
		r, err := appendTx(ctx, tx, s.Device, TypeSnapshot, s.TakenAt, ref)
		if err != nil {
			return err
		}
		recs = append(recs, r)
		return nil
	})
	if err != nil {
		return nil, err
	}
	return recs, nil
}

// Snapshot returns a stored snapshot by id, unique prefix or digest.
func (d *DB) Snapshot(ctx context.Context, id string) (*snapshots.Snapshot, error) {
	ref, err := ParseRef(id)
	if err != nil {
		return nil, err
	}
	if ref.Kind != RefID {
		return nil, fmt.Errorf("snapshot %q: want an id, prefix or digest (use Resolve for DEVICE@...)", id)
	}
	sr, err := d.refByPrefix(ctx, ref.ID)
	if err != nil {
		return nil, err
	}
	return d.load(ctx, sr)
}

// refByPrefix finds the one snapshot whose id or digest starts with prefix,
// among snapshot records, and returns a record body naming it (one with a
// manifest digest if any has).
func (d *DB) refByPrefix(ctx context.Context, prefix string) (SnapshotRef, error) {
	lo := idOf(prefix)
	hi := lo + "g" // above every id that starts with lo
	rows, err := d.db.QueryContext(ctx, qByIDRange, lo, hi)
	if err != nil {
		return SnapshotRef{}, fmt.Errorf("store %s: looking up snapshot %s: %w", d.path, prefix, err)
	}
	defer rows.Close()
	seen := map[string]int{} // digest -> index in found
	var found []SnapshotRef
	for rows.Next() {
		var body []byte
		if err := rows.Scan(&body); err != nil {
			return SnapshotRef{}, fmt.Errorf("store %s: looking up snapshot %s: %w", d.path, prefix, err)
		}
		ref, err := decodeRef(body)
		if err != nil {
			return SnapshotRef{}, fmt.Errorf("store %s: looking up snapshot %s: %w", d.path, prefix, err)
		}
		if !strings.HasPrefix(ref.Digest, prefix) {
			continue
		}
		if i, ok := seen[ref.Digest]; ok {
			if found[i].Manifest == "" {
				found[i] = ref
			}
			continue
		}
		seen[ref.Digest] = len(found)
		found = append(found, ref)
	}
	if err := rows.Err(); err != nil {
		return SnapshotRef{}, fmt.Errorf("store %s: looking up snapshot %s: %w", d.path, prefix, err)
	}
	switch len(found) {
	case 0:
		return SnapshotRef{}, fmt.Errorf("snapshot %s: %w", prefix, ErrNotFound)
	case 1:
		return found[0], nil
	}
	ids := make([]string, len(found))
	for i, f := range found {
		ids[i] = f.ID
	}
	return SnapshotRef{}, fmt.Errorf("snapshot %s matches %s: %w", prefix, strings.Join(ids, ", "), ErrAmbiguous)
}

// load reassembles the snapshot a record body names and re-verifies it:
// its blobs are read in bulk in key order, each hashed once against its key,
// and the manifest checked against the record's manifest digest (or, for
// records from before schema 2, the encoding the blobs reassemble to
// hashed against the digest). Nothing is re-encoded.
func (d *DB) load(ctx context.Context, ref SnapshotRef) (*snapshots.Snapshot, error) {
	m, err := d.manifest(ctx, ref.Digest)
	if err != nil {
		return nil, err
	}
	if ref.Manifest != "" {
		if got := ManifestDigest(m.header, m.keys); got != ref.Manifest {
			return nil, fmt.Errorf("store %s: snapshot %s: manifest hashes to %s, the snapshot record names %s: %w", d.path, ref.Digest, got, ref.Manifest, snapshots.ErrDigestMismatch)
		}
	}
	blobs, err := d.blobs(ctx, m.ks)
	if err != nil {
		return nil, fmt.Errorf("store %s: snapshot %s: %w", d.path, ref.Digest, err)
	}
	s, err := decodeManifest(m.header, m.keys, m.ks, ref.Digest, ref.Manifest, false, blobs, nil)
	if err != nil {
		return nil, fmt.Errorf("store %s: snapshot %s: %w", d.path, ref.Digest, err)
	}
	return s, nil
}

// storedManifest is a snapshot's stored header and item keys.
type storedManifest struct {
	header, keys []byte
	ks           [][keySize]byte
}

// manifest reads the header and item keys of the snapshot with the given
// digest, following its chain of deltas (see readManifest).
func (d *DB) manifest(ctx context.Context, digest string) (storedManifest, error) {
	return d.manifestFrom(ctx, digest, nil)
}

// manifestFrom is manifest with a key list already reconstructed: when the
// snapshot's chain of bases passes through the cached one, the walk stops
// there (a diff of a snapshot against an ancestor reads the shared base
// once).
func (d *DB) manifestFrom(ctx context.Context, digest string, cache *keyCache) (storedManifest, error) {
	var m storedManifest
	var err error
	m.header, m.keys, _, err = readManifest(ctx, d.db, d.version, digest, cache)
	if err != nil {
		return m, fmt.Errorf("store %s: reading snapshot %s: %w", d.path, digest, err)
	}
	if m.ks, err = splitKeys(m.keys); err != nil {
		return m, fmt.Errorf("store %s: snapshot %s: %w", d.path, digest, err)
	}
	return m, nil
}

// blobs reads the item blobs with the given keys in bulk (distinct keys in
// ascending order, many per query, so the B-tree is walked forward), hashes
// each once against its key and fails on a missing or altered one.
func (d *DB) blobs(ctx context.Context, keys [][keySize]byte) (verifiedBlobs, error) {
	sorted := slices.Clone(keys)
	slices.SortFunc(sorted, func(a, b [keySize]byte) int { return bytes.Compare(a[:], b[:]) })
	sorted = slices.Compact(sorted)
	const batch = 900
	out := make(verifiedBlobs, len(sorted))
	args := make([]any, 0, batch)
	for start := 0; start < len(sorted); start += batch {
		end := min(start+batch, len(sorted))
		args = args[:0]
		for i := start; i < end; i++ {
			args = append(args, sorted[i][:])
		}
		q := `SELECT hash, data FROM blobs WHERE hash IN (?` + strings.Repeat(",?", len(args)-1) + `) ORDER BY hash`
		rows, err := d.db.QueryContext(ctx, q, args...)
		if err != nil {
			return nil, fmt.Errorf("reading item blobs: %w", err)
		}
		for rows.Next() {
			var h, data []byte
			if err := rows.Scan(&h, &data); err != nil {
				rows.Close()
				return nil, fmt.Errorf("reading item blobs: %w", err)
			}
			if len(h) != keySize {
				continue
			}
			if err := out.add([keySize]byte(h), data); err != nil {
				rows.Close()
				return nil, err
			}
		}
		err = rows.Err()
		rows.Close()
		if err != nil {
			return nil, fmt.Errorf("reading item blobs: %w", err)
		}
	}
	for _, k := range sorted {
		if _, ok := out[k]; !ok {
			return nil, fmt.Errorf("item blob %x is missing (see verify)", k)
		}
	}
	return out, nil
}

// presentKeys returns which of keys the blobs table holds, looked up many
// per query in ascending order.
func presentKeys(ctx context.Context, tx *sql.Tx, keys [][keySize]byte) (map[[keySize]byte]bool, error) {
	sorted := slices.Clone(keys)
	slices.SortFunc(sorted, func(a, b [keySize]byte) int { return bytes.Compare(a[:], b[:]) })
	sorted = slices.Compact(sorted)
	const batch = 900
	have := make(map[[keySize]byte]bool, len(sorted))
	args := make([]any, 0, batch)
	for start := 0; start < len(sorted); start += batch {
		end := min(start+batch, len(sorted))
		args = args[:0]
		for i := start; i < end; i++ {
			args = append(args, sorted[i][:])
		}
		rows, err := tx.QueryContext(ctx, `SELECT hash FROM blobs WHERE hash IN (?`+strings.Repeat(",?", len(args)-1)+`)`, args...)
		if err != nil {
			return nil, fmt.Errorf("looking up item blobs: %w", err)
		}
		for rows.Next() {
			var h []byte
			if err := rows.Scan(&h); err != nil {
				rows.Close()
				return nil, fmt.Errorf("looking up item blobs: %w", err)
			}
			if len(h) == keySize {
				have[[keySize]byte(h)] = true
			}
		}
		err = rows.Err()
		rows.Close()
		if err != nil {
			return nil, fmt.Errorf("looking up item blobs: %w", err)
		}
	}
	return have, nil
}

// parallelReads is the number of blobs each side of a diff must read for
// the two sides to read on two connections at once (see resolveDiff); a
// variable so that tests take both ways with small snapshots.
var parallelReads = 500

// beforeSideRead, when a test sets it, runs in each side's goroutine of a
// diff read on two connections, under its fault guard, before the side
// reads its blobs.
var beforeSideRead func()

// DiffPair is two stored snapshots loaded for a comparison: the items both
// hold byte for byte (same path, same content, same provenance) are left out
// of both, because they compare equal whatever the rest is (they give no
// change, in a complete or a partial snapshot). Both digests are verified
// over the full content, every item included.
type DiffPair struct {
	Old, New *snapshots.Snapshot
	// Shared is the number of items left out of each side.
	Shared int
}

// ResolveDiff resolves two references (as Resolve) and loads them for a
// comparison: each distinct item blob is read once in bulk and hashed once,
// each snapshot's encoding is hashed against its digest, and only the items
// that differ between the two are decoded. diffing.Compare gives the same
// report for the pair as for the full snapshots.
func (d *DB) ResolveDiff(ctx context.Context, oldRef, newRef string) (p *DiffPair, err error) {
	err = d.guard(func() error {
		p, err = d.resolveDiff(ctx, oldRef, newRef)
		return err
	})
	return p, err
}

func (d *DB) resolveDiff(ctx context.Context, oldRef, newRef string) (*DiffPair, error) {
	type side struct {
		name   string
		ref    SnapshotRef
		device string
		m      storedManifest
	}
	sides := []*side{{name: oldRef}, {name: newRef}}
	for _, sd := range sides {
		var err error
		if sd.ref, sd.device, err = d.resolveRef(ctx, sd.name); err != nil {
			return nil, err
		}
	}
	// The old side is read first; the new side's chain of bases stops at
	// it when it passes through it (the usual diff of a snapshot against
	// an earlier one of its device), so the shared base is read once. Each
	// key list is hashed against the digest its record names while the
	// reads go on (on another CPU); a manifest that does not check is the
	// error reported, before any that its keys caused later (a damaged key
	// reads as a missing blob otherwise).
	var cache *keyCache
	hashErrs := make([]error, len(sides))
	var hashes sync.WaitGroup
	checked := func(err error) error {
		hashes.Wait()
		for _, e := range hashErrs {
			if e != nil {
				return e
			}
		}
		return err
	}
	for i, sd := range sides {
		var err error
		if sd.m, err = d.manifestFrom(ctx, sd.ref.Digest, cache); err != nil {
			return nil, checked(fmt.Errorf("%s: %w", sd.name, err))
		}
		if sd.ref.Manifest != "" {
			hashes.Go(func() {
				if got := ManifestDigest(sd.m.header, sd.m.keys); got != sd.ref.Manifest {
					hashErrs[i] = fmt.Errorf("store %s: %s: snapshot %s: manifest hashes to %s, the snapshot record names %s: %w", d.path, sd.name, sd.ref.Digest, got, sd.ref.Manifest, snapshots.ErrDigestMismatch)
				}
			})
			// A key list from a record naming its manifest digest may
			// shorten the other side's walk: if it does not check, its
			// error is the one reported.
			cache = &keyCache{digest: sd.ref.Digest, header: sd.m.header, keys: sd.m.keys}
		}
	}
	o, n := sides[0], sides[1]
	// An item both hold has the same key on both sides (a key is the hash
	// of the item's bytes, path included; no two items of a snapshot share
	// one). Most sit at the same position; the rest are matched by key.
	shared := [][]bool{make([]bool, len(o.m.ks)), make([]bool, len(n.m.ks))}
	count := 0
	for i := range min(len(o.m.ks), len(n.m.ks)) {
		if o.m.ks[i] == n.m.ks[i] {
			shared[0][i], shared[1][i] = true, true
			count++
		}
	}
	rest := map[[keySize]byte]int{}
	for i, k := range o.m.ks {
		if !shared[0][i] {
			rest[k] = i
		}
	}
	for j, k := range n.m.ks {
		if shared[1][j] {
			continue
		}
		if i, ok := rest[k]; ok {
			shared[0][i], shared[1][j] = true, true
			count++
		}
	}
	// With manifest digests on both sides only the items that differ are
	// read; otherwise every item is, to hash each encoding. When both
	// sides read many, each reads its own on a connection of its own and
	// decodes them (2 CPUs: one side decodes while the other still
	// reads); opening the second connection (about a millisecond) is
	// worth it from parallelReads keys a side. A manifest that does not
	// check is reported before any error of the reads.
	wants := make([][][keySize]byte, 2)
	for i, sd := range sides {
		for j, k := range sd.m.ks {
			if sd.ref.Manifest == "" || !shared[i][j] {
				wants[i] = append(wants[i], k)
			}
		}
	}
	parallel := min(len(wants[0]), len(wants[1])) >= parallelReads
	var all verifiedBlobs
	var readErr error
	if !parallel {
		if all, readErr = d.blobs(ctx, append(wants[0], wants[1]...)); readErr != nil {
			readErr = fmt.Errorf("store %s: %s and %s: %w", d.path, oldRef, newRef, readErr)
		}
	}
	p := &DiffPair{Shared: count}
	out := make([]*snapshots.Snapshot, 2)
	readErrs, errs := make([]error, 2), make([]error, 2)
	var wg sync.WaitGroup
	for i, sd := range sides {
		if readErr != nil {
			break
		}
		wg.Go(func() {
			blobs := all
			if parallel {
				// A fault of the memory map in this goroutine is
				// caught here: guard's recover covers its own
				// goroutine only.
				if err := d.guard(func() (err error) {
					if beforeSideRead != nil {
						beforeSideRead()
					}
					blobs, err = d.blobs(ctx, wants[i])
					return err
				}); err != nil {
					readErrs[i] = fmt.Errorf("store %s: %s and %s: %w", d.path, oldRef, newRef, err)
					return
				}
			}
			hashes.Wait()
			if hashErrs[0] != nil || hashErrs[1] != nil {
				return
			}
			s, err := decodeManifest(sd.m.header, sd.m.keys, sd.m.ks, sd.ref.Digest, sd.ref.Manifest, true, blobs, func(j int) bool { return shared[i][j] })
			if err != nil {
				errs[i] = fmt.Errorf("store %s: %s: snapshot %s: %w", d.path, sd.name, sd.ref.Digest, err)
				return
			}
			// An imported chain ("site/device") holds the site's
			// snapshots, which name the device as the site does.
			if sd.device != "" && s.Device != sd.device && !strings.HasSuffix(sd.device, "/"+s.Device) {
				errs[i] = fmt.Errorf("%s: the approval names snapshot %s of device %s", sd.name, s.ID, s.Device)
				return
			}
			out[i] = s
		})
	}
	wg.Wait()
	if parallel && (readErrs[0] != nil || readErrs[1] != nil) && !d.faulted.Load() {
		// Each side names its own first damaged blob; read as one, the
		// error names the first in key order, whichever side holds it:
		// the same error whichever way the sides were read. (Not after a
		// fault: the handle is not used again.)
		if _, err := d.blobs(ctx, append(wants[0], wants[1]...)); err != nil {
			readErrs = []error{fmt.Errorf("store %s: %s and %s: %w", d.path, oldRef, newRef, err)}
		}
	}
	if err := checked(errors.Join(append(readErrs, readErr)...)); err != nil {
		return nil, err
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	p.Old, p.New = out[0], out[1]
	return p, nil
}

// resolveRef returns a record body naming the snapshot ref names and, for
// DEVICE@baseline, the device the snapshot must belong to.
func (d *DB) resolveRef(ctx context.Context, ref string) (sr SnapshotRef, device string, err error) {
	r, err := ParseRef(ref)
	if err != nil {
		return sr, "", err
	}
	var q string
	var args []any
	switch r.Kind {
	case RefID:
		sr, err := d.refByPrefix(ctx, r.ID)
		return sr, "", err
	case RefBaseline:
		a, err := d.Baseline(ctx, r.Device)
		if err != nil {
			return sr, "", err
		}
		sr, err := d.refOfDigest(ctx, a.Digest)
		return sr, r.Device, err
	case RefLatest:
		q, args = qLatest, []any{r.Device}
	default:
		q, args = qLabel, []any{r.Device, r.Label}
	}
	var body []byte
	err = d.db.QueryRowContext(ctx, q, args...).Scan(&body)
	if errors.Is(err, sql.ErrNoRows) {
		return sr, "", fmt.Errorf("%s: %w", ref, ErrNotFound)
	}
	if err != nil {
		return sr, "", fmt.Errorf("store %s: %s: %w", d.path, ref, err)
	}
	if sr, err = decodeRef(body); err != nil {
		return sr, "", fmt.Errorf("store %s: %s: %w", d.path, ref, err)
	}
	return sr, "", nil
}

// refOfDigest returns a snapshot record body naming the snapshot with the
// given digest; with no such record, one with the digest alone (checked
// against the full encoding).
func (d *DB) refOfDigest(ctx context.Context, digest string) (SnapshotRef, error) {
	sr, err := d.refByPrefix(ctx, digest)
	if errors.Is(err, ErrNotFound) {
		return SnapshotRef{ID: digest[:snapshots.IDLength], Digest: digest}, nil
	}
	return sr, err
}

// Resolve returns the snapshot a reference names (see ParseRef).
func (d *DB) Resolve(ctx context.Context, ref string) (s *snapshots.Snapshot, err error) {
	err = d.guard(func() error {
		s, err = d.resolve(ctx, ref)
		return err
	})
	return s, err
}

func (d *DB) resolve(ctx context.Context, ref string) (*snapshots.Snapshot, error) {
	r, err := ParseRef(ref)
	if err != nil {
		return nil, err
	}
	switch r.Kind {
	case RefID:
		return d.Snapshot(ctx, r.ID)
	case RefLatest:
		return d.Latest(ctx, r.Device, false)
	case RefBaseline:
		a, err := d.Baseline(ctx, r.Device)
		if err != nil {
			return nil, err
		}
		sr, err := d.refOfDigest(ctx, a.Digest)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", ref, err)
		}
		s, err := d.load(ctx, sr)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", ref, err)
		}
		// An imported chain ("site/device") holds the site's snapshots,
		// which name the device as the site does.
		if s.Device != r.Device && !strings.HasSuffix(r.Device, "/"+s.Device) {
			return nil, fmt.Errorf("%s: the approval names snapshot %s of device %s", ref, s.ID, s.Device)
		}
		return s, nil
	}
	return d.snapshotFrom(ctx, ref, qLabel, r.Device, r.Label)
}

// Latest returns the device's newest snapshot (newest complete one when
// completeOnly), or ErrNotFound.
func (d *DB) Latest(ctx context.Context, device string, completeOnly bool) (*snapshots.Snapshot, error) {
	if completeOnly {
		return d.snapshotFrom(ctx, device+" latest complete snapshot", qLatestDone, device)
	}
	return d.snapshotFrom(ctx, device+" latest snapshot", qLatest, device)
}

// snapshotFrom loads the snapshot named by the first snapshot record query
// q returns.
func (d *DB) snapshotFrom(ctx context.Context, what, q string, args ...any) (*snapshots.Snapshot, error) {
	var body []byte
	err := d.db.QueryRowContext(ctx, q, args...).Scan(&body)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, fmt.Errorf("%s: %w", what, ErrNotFound)
	}
	if err != nil {
		return nil, fmt.Errorf("store %s: %s: %w", d.path, what, err)
	}
	ref, err := decodeRef(body)
	if err != nil {
		return nil, fmt.Errorf("store %s: %s: %w", d.path, what, err)
	}
	return d.load(ctx, ref)
}

// Baseline returns the device's newest approval, or ErrNoBaseline.
func (d *DB) Baseline(ctx context.Context, device string) (*Approval, error) {
	r, err := scanRecord(d.db.QueryRowContext(ctx, qNewestOfType, TypeApproval, device))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, fmt.Errorf("device %s: %w", device, ErrNoBaseline)
	}
	if err != nil {
		return nil, fmt.Errorf("store %s: baseline of %s: %w", d.path, device, err)
	}
	var a Approval
	if err := decodeStrict(r.Body, &a); err != nil {
		return nil, fmt.Errorf("store %s: approval record %s #%d: %w", d.path, device, r.Seq, err)
	}
	if len(a.Digest) != 64 || !isHex(a.Digest) {
		return nil, fmt.Errorf("store %s: approval record %s #%d: snapshot digest %q, want 64 hex digits", d.path, device, r.Seq, a.Digest)
	}
	return &a, nil
}

// RecordsOfType returns records of one type in chain order (all devices,
// by device then seq, if device is "").
func (d *DB) RecordsOfType(ctx context.Context, device, typ string) ([]Record, error) {
	if device == "" {
		return d.query(ctx, qOfTypeAll, typ)
	}
	return d.query(ctx, qOfType, typ, device)
}

// Records returns a device's chain (all chains, by device then seq, if
// device is "").
func (d *DB) Records(ctx context.Context, device string) ([]Record, error) {
	if device == "" {
		return d.query(ctx, `SELECT `+recordCols+` FROM records ORDER BY device, seq`)
	}
	return d.query(ctx, `SELECT `+recordCols+` FROM records WHERE device = ? ORDER BY seq`, device)
}

func (d *DB) query(ctx context.Context, q string, args ...any) ([]Record, error) {
	rows, err := d.db.QueryContext(ctx, q, args...)
	if err != nil {
		return nil, fmt.Errorf("store %s: reading records: %w", d.path, err)
	}
	defer rows.Close()
	var out []Record
	for rows.Next() {
		r, err := scanRecord(rows)
		if err != nil {
			return nil, fmt.Errorf("store %s: %w", d.path, err)
		}
		out = append(out, r)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("store %s: reading records: %w", d.path, err)
	}
	return out, nil
}

// Devices lists the devices that have records, sorted.
func (d *DB) Devices(ctx context.Context) ([]string, error) {
	rows, err := d.db.QueryContext(ctx, `SELECT DISTINCT device FROM records ORDER BY device`)
	if err != nil {
		return nil, fmt.Errorf("store %s: listing devices: %w", d.path, err)
	}
	defer rows.Close()
	var out []string
	for rows.Next() {
		var s string
		if err := rows.Scan(&s); err != nil {
			return nil, fmt.Errorf("store %s: listing devices: %w", d.path, err)
		}
		out = append(out, s)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("store %s: listing devices: %w", d.path, err)
	}
	return out, nil
}

// Heads returns the newest record of every chain, sorted by device.
func (d *DB) Heads(ctx context.Context) ([]Head, error) {
	// SQLite returns the other columns from the row holding max(seq).
	rows, err := d.db.QueryContext(ctx, `SELECT device, max(seq), digest FROM records GROUP BY device ORDER BY device`)
	if err != nil {
		return nil, fmt.Errorf("store %s: reading chain heads: %w", d.path, err)
	}
	defer rows.Close()
	var out []Head
	for rows.Next() {
		var h Head
		if err := rows.Scan(&h.Device, &h.Seq, &h.Digest); err != nil {
			return nil, fmt.Errorf("store %s: reading chain heads: %w", d.path, err)
		}
		out = append(out, h)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("store %s: reading chain heads: %w", d.path, err)
	}
	return out, nil
}

// Stats describes a store's size.
type Stats struct {
	Records   int64 `json:"records"`
	Snapshots int64 `json:"snapshots"` // distinct snapshot contents
	Blobs     int64 `json:"blobs"`     // distinct items
	BlobBytes int64 `json:"blob_bytes"`
	// Bytes is the database size (pages in use, including the WAL's).
	Bytes int64 `json:"bytes"`
}

// Stats counts what the store holds.
func (d *DB) Stats(ctx context.Context) (Stats, error) {
	var s Stats
	var pages, pageSize int64
	err := d.db.QueryRowContext(ctx, `SELECT
		(SELECT count(*) FROM records),
		(SELECT count(*) FROM snapshots),
		(SELECT count(*) FROM blobs),
		(SELECT coalesce(sum(length(data)), 0) FROM blobs),
		(SELECT page_count FROM pragma_page_count()),
		(SELECT page_size FROM pragma_page_size())`).Scan(&s.Records, &s.Snapshots, &s.Blobs, &s.BlobBytes, &pages, &pageSize)
	if err != nil {
		return Stats{}, fmt.Errorf("store %s: reading stats: %w", d.path, err)
	}
	s.Bytes = pages * pageSize
	return s, nil
}

type rowScanner interface{ Scan(dest ...any) error }

// scanRecord reads one row of recordCols. Stored data is untrusted: a time
// that does not parse is an error naming the record.
func scanRecord(sc rowScanner) (Record, error) {
	var r Record
	var ts string
	var body []byte
	if err := sc.Scan(&r.Device, &r.Seq, &r.Type, &ts, &body, &r.Prev, &r.Digest); err != nil {
		return Record{}, err
	}
	t, err := parseTime(ts)
	if err != nil {
		return Record{}, fmt.Errorf("record %s #%d: %w", r.Device, r.Seq, err)
	}
	r.Time, r.Body = t, body
	return r, nil
}

func parseTime(s string) (time.Time, error) {
	t, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		return time.Time{}, fmt.Errorf("time %q: want RFC 3339: %w", s, err)
	}
	return t.UTC(), nil
}

// decodeRef parses a snapshot record body.
func decodeRef(body []byte) (SnapshotRef, error) {
	var r SnapshotRef
	if err := decodeStrict(body, &r); err != nil {
		return r, fmt.Errorf("snapshot record body: %w", err)
	}
	if len(r.Digest) != 64 || !isHex(r.Digest) || r.ID != r.Digest[:snapshots.IDLength] {
		return r, fmt.Errorf("snapshot record body: id %q and digest %q, want 64 hex digits and the id its first %d", r.ID, r.Digest, snapshots.IDLength)
	}
	if r.Manifest != "" && (len(r.Manifest) != 64 || !isHex(r.Manifest)) {
		return r, fmt.Errorf("snapshot record body: manifest digest %q, want 64 hex digits", r.Manifest)
	}
	return r, nil
}

// isBusy reports whether err is SQLite's "database is locked" or "busy".
func isBusy(err error) bool {
	m := strings.ToLower(err.Error())
	return strings.Contains(m, "database is locked") || strings.Contains(m, "sqlite_busy") || strings.Contains(m, "(5)") || strings.Contains(m, "(6)")
}

// counterHeadsLogged names the count of chain heads written to the alert log.
const counterHeadsLogged = "heads_logged"

// AddHeadsLogged adds n to the number of chain heads this store has had
// written to its alert log. The caller calls it after each head line is on
// disk, so the count never exceeds the lines a whole log holds.
func (d *DB) AddHeadsLogged(ctx context.Context, n int64) error {
	return d.write(ctx, func(tx *sql.Tx) error {
		_, err := tx.ExecContext(ctx, `INSERT INTO counters (name, value) VALUES (?, ?)
			ON CONFLICT (name) DO UPDATE SET value = value + excluded.value`, counterHeadsLogged, n)
		if err != nil {
			return fmt.Errorf("store %s: counting logged heads: %w", d.path, err)
		}
		return nil
	})
}

// HeadsLogged returns how many chain heads were written to the alert log;
// known is false for a store older than the count (schema version 1).
func (d *DB) HeadsLogged(ctx context.Context) (n int64, known bool, err error) {
	if d.version < 2 {
		return 0, false, nil
	}
	err = d.db.QueryRowContext(ctx, `SELECT value FROM counters WHERE name = ?`, counterHeadsLogged).Scan(&n)
	if errors.Is(err, sql.ErrNoRows) {
		return 0, true, nil
	}
	if err != nil {
		return 0, false, fmt.Errorf("store %s: reading the logged-heads count: %w", d.path, err)
	}
	return n, true, nil
}

// fileKind names a file type in words ("directory"), for messages.
func fileKind(m os.FileMode) string {
	switch {
	case m.IsDir():
		return "directory"
	case m&os.ModeSymlink != 0:
		return "symbolic link"
	case m&os.ModeNamedPipe != 0:
		return "named pipe"
	case m&os.ModeSocket != 0:
		return "socket"
	case m&os.ModeDevice != 0:
		return "device"
	}
	return "special file (" + m.Type().String() + ")"
}
