// Command difffloor is a measurement anchor for `make bench`, never
// shipped: the least work any static binary that links plcwatch's required
// libraries and its embedded store can do to compare two stored snapshots.
// It starts (the Go runtime and the libraries' package initialisation),
// opens the store read-only through a memory map as plcwatch does, reads
// both manifests (one as an edit script against the other, the store's
// format of schema 4: see store/manifest.go), hashes both key lists, and
// reads and hashes the blobs of the items the two do not share. It decodes,
// compares and prints nothing of the items: whatever `plcwatch diff` does on
// top is above this floor.
//
// Usage: difffloor STORE OLD_DIGEST NEW_DIGEST (full 64-hex-digit snapshot
// digests). It prints the counts it read and exits 0, or names what it
// could not read and exits 2.
package main

import (
	"bytes"
	"crypto/sha256"
	"database/sql"
	"encoding/binary"
	"errors"
	"fmt"
	"net/url"
	"os"
	"slices"
	"strings"

	// The libraries every plcwatch binary links; their package
	// initialisation is part of every process's start.
	_ "github.com/gopcua/opcua"
	_ "github.com/robfig/cron/v3"
	_ "github.com/robinson/gos7"
	_ "github.com/rs/zerolog"
	_ "github.com/sergi/go-diff/diffmatchpatch"
	_ "modernc.org/sqlite"
)

const keySize = sha256.Size

func main() {
	if len(os.Args) != 4 {
		fmt.Fprintln(os.Stderr, "usage: difffloor STORE OLD_DIGEST NEW_DIGEST")
		os.Exit(2)
	}
	n, size, err := floor(os.Args[1], os.Args[2], os.Args[3])
	if err != nil {
		fmt.Fprintln(os.Stderr, "difffloor:", err)
		os.Exit(2)
	}
	fmt.Printf("%d blobs of %d bytes read and hashed\n", n, size)
}

type row struct {
	header, items []byte
	base          sql.NullString
}

func floor(path, oldDigest, newDigest string) (blobs, size int, err error) {
	u := (&url.URL{Scheme: "file", Opaque: (&url.URL{Path: path}).EscapedPath()}).String()
	db, err := sql.Open("sqlite", u+"?mode=ro&_pragma=mmap_size(1073741824)")
	if err != nil {
		return 0, 0, err
	}
	defer db.Close()
	var rows [2]row
	for i, d := range []string{oldDigest, newDigest} {
		r := &rows[i]
		if err := db.QueryRow(`SELECT header, items, base FROM snapshots WHERE digest = ?`, d).Scan(&r.header, &r.items, &r.base); err != nil {
			return 0, 0, fmt.Errorf("snapshot %s: %w", d, err)
		}
	}
	if rows[0].base.Valid {
		return 0, 0, fmt.Errorf("snapshot %s is stored as a delta: the floor reads a full key list on the old side", oldDigest)
	}
	oldKeys := rows[0].items
	var newKeys []byte
	var want [][keySize]byte // the keys the two sides do not share
	switch {
	case !rows[1].base.Valid:
		newKeys = rows[1].items
		want = unshared(oldKeys, newKeys)
	case rows[1].base.String == oldDigest:
		if newKeys, want, err = apply(oldKeys, rows[1].items); err != nil {
			return 0, 0, fmt.Errorf("snapshot %s: %w", newDigest, err)
		}
	default:
		return 0, 0, fmt.Errorf("snapshot %s is a delta against %s, not against %s", newDigest, rows[1].base.String, oldDigest)
	}
	for _, keys := range [][]byte{oldKeys, newKeys} {
		h := sha256.New()
		h.Write(rows[0].header)
		h.Write(keys)
		h.Sum(nil)
	}
	slices.SortFunc(want, func(a, b [keySize]byte) int { return bytes.Compare(a[:], b[:]) })
	want = slices.Compact(want)
	const batch = 900
	for start := 0; start < len(want); start += batch {
		part := want[start:min(start+batch, len(want))]
		args := make([]any, len(part))
		for i := range part {
			args[i] = part[i][:]
		}
		rs, err := db.Query(`SELECT hash, data FROM blobs WHERE hash IN (?`+strings.Repeat(",?", len(args)-1)+`) ORDER BY hash`, args...)
		if err != nil {
			return 0, 0, err
		}
		for rs.Next() {
			var k, data []byte
			if err := rs.Scan(&k, &data); err != nil {
				rs.Close()
				return 0, 0, err
			}
			if sum := sha256.Sum256(data); !bytes.Equal(sum[:], k) {
				rs.Close()
				return 0, 0, fmt.Errorf("blob %x hashes to %x", k, sum)
			}
			blobs++
			size += len(data)
		}
		err = rs.Err()
		rs.Close()
		if err != nil {
			return 0, 0, err
		}
	}
	if blobs != len(want) {
		return 0, 0, fmt.Errorf("read %d of %d blobs", blobs, len(want))
	}
	return blobs, size, nil
}

// apply rebuilds the new key list from the old one and its edit script
// (uvarint skip, uvarint n, n keys, uvarint copy, repeated) and returns it
// with the keys skipped on the old side and inserted on the new.
func apply(base, script []byte) (keys []byte, want [][keySize]byte, err error) {
	keys = make([]byte, 0, len(base))
	at, n := 0, len(base)/keySize
	next := func() (int, error) {
		v, m := binary.Uvarint(script)
		if m <= 0 || v > uint64(len(base)+len(script)) {
			return 0, errors.New("edit script: bad varint")
		}
		script = script[m:]
		return int(v), nil
	}
	for len(script) > 0 {
		skip, err := next()
		if err != nil {
			return nil, nil, err
		}
		ins, err := next()
		if err != nil {
			return nil, nil, err
		}
		if at+skip > n || ins*keySize > len(script) {
			return nil, nil, errors.New("edit script: out of range")
		}
		for i := at; i < at+skip; i++ {
			want = append(want, [keySize]byte(base[i*keySize:]))
		}
		at += skip
		for i := 0; i < ins; i++ {
			want = append(want, [keySize]byte(script[i*keySize:]))
		}
		keys = append(keys, script[:ins*keySize]...)
		script = script[ins*keySize:]
		cp, err := next()
		if err != nil {
			return nil, nil, err
		}
		if at+cp > n {
			return nil, nil, errors.New("edit script: copies out of range")
		}
		keys = append(keys, base[at*keySize:(at+cp)*keySize]...)
		at += cp
	}
	if at != n {
		return nil, nil, errors.New("edit script: ends before the base does")
	}
	return keys, want, nil
}

// unshared returns the keys that only one of two full key lists holds.
func unshared(a, b []byte) [][keySize]byte {
	count := map[[keySize]byte]int{}
	for _, l := range [][]byte{a, b} {
		for i := 0; i+keySize <= len(l); i += keySize {
			count[[keySize]byte(l[i:])]++
		}
	}
	var out [][keySize]byte
	for k, c := range count {
		if c == 1 {
			out = append(out, k)
		}
	}
	return out
}
