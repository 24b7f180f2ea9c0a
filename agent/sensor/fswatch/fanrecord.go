package fswatch

import (
	"bytes"
	"encoding/binary"
	"fmt"

	"github.com/fsnotify/fsnotify"
)

// The fanotify ABI as read from the kernel (include/uapi/linux/fanotify.h);
// kept here so the records parse on any platform the tests run on.
const (
	fanMetadataVersion = 3
	fanMetadataLen     = 24 // struct fanotify_event_metadata
	fanInfoHeaderLen   = 4  // struct fanotify_event_info_header
	fanFsidLen         = 8  // __kernel_fsid_t
	fanHandleHeaderLen = 8  // struct file_handle without f_handle

	fanInfoFID         = 1
	fanInfoDFIDName    = 2
	fanInfoDFID        = 3
	fanInfoOldDFIDName = 10
	fanInfoNewDFIDName = 12

	fanAccess       = 0x00000001
	fanModify       = 0x00000002
	fanAttrib       = 0x00000004
	fanCloseWrite   = 0x00000008
	fanMovedFrom    = 0x00000040
	fanMovedTo      = 0x00000080
	fanCreate       = 0x00000100
	fanDelete       = 0x00000200
	fanDeleteSelf   = 0x00000400
	fanMoveSelf     = 0x00000800
	fanQOverflow    = 0x00004000
	fanEventOnChild = 0x08000000
	fanOnDir        = 0x40000000
)

// fanRecord is one fanotify event as the sensor uses it.
type fanRecord struct {
	// Mask is the event's mask (FAN_CREATE, FAN_MODIFY, ..., FAN_ONDIR).
	Mask uint64
	// PID is the process that caused the event; 0 when the kernel did not
	// say (queue overflow).
	PID int
	// Dir identifies the folder the event happened in (its filesystem id
	// and file handle, as fidKey builds it), and Name the entry in it: "."
	// or empty for an event on the folder itself. Dir is empty when the
	// event carried no folder record.
	Dir  string
	Name string
}

// overflow reports whether the record says the kernel dropped events.
func (r fanRecord) overflow() bool { return r.Mask&fanQOverflow != 0 }

// fidKey is the map key of a file handle on a filesystem: the 8 bytes of
// the filesystem id, the handle type in 4 bytes and the handle itself,
// all as the kernel lays them out.
func fidKey(fsid []byte, handleType int32, handle []byte) string {
	b := make([]byte, 0, len(fsid)+4+len(handle))
	b = append(b, fsid...)
	b = binary.NativeEndian.AppendUint32(b, uint32(handleType))
	b = append(b, handle...)
	return string(b)
}

// parseFanotify decodes what one read of a fanotify descriptor returned:
// a sequence of event metadata, each followed by its information
// records. Records it does not use (pidfd, errors, the object's own
// handle) are skipped by their length. It returns the events decoded
// before the first malformed one along with an error naming the field
// and its offset.
func parseFanotify(buf []byte) ([]fanRecord, error) {
	var out []fanRecord
	ne := binary.NativeEndian
	for off := 0; off < len(buf); {
		rest := buf[off:]
		if len(rest) < fanMetadataLen {
			return out, fmt.Errorf("fanotify event at offset %d: %d bytes, shorter than its %d byte header", off, len(rest), fanMetadataLen)
		}
		evLen := int(ne.Uint32(rest[0:4]))
		vers := rest[4]
		metaLen := int(ne.Uint16(rest[6:8]))
		if vers != fanMetadataVersion {
			return out, fmt.Errorf("fanotify event at offset %d: version %d, want %d", off, vers, fanMetadataVersion)
		}
		if metaLen < fanMetadataLen || metaLen > evLen {
			return out, fmt.Errorf("fanotify event at offset %d: metadata_len %d outside %d..event_len %d", off, metaLen, fanMetadataLen, evLen)
		}
		if evLen > len(rest) {
			return out, fmt.Errorf("fanotify event at offset %d: event_len %d past the %d bytes read", off, evLen, len(rest))
		}
		rec := fanRecord{Mask: ne.Uint64(rest[8:16]), PID: int(int32(ne.Uint32(rest[20:24])))}
		info := rest[metaLen:evLen]
		for ioff := 0; ioff < len(info); {
			at := off + metaLen + ioff
			ir := info[ioff:]
			if len(ir) < fanInfoHeaderLen {
				return out, fmt.Errorf("fanotify info record at offset %d: %d bytes, shorter than its header", at, len(ir))
			}
			typ := ir[0]
			iLen := int(ne.Uint16(ir[2:4]))
			if iLen < fanInfoHeaderLen || iLen > len(ir) {
				return out, fmt.Errorf("fanotify info record at offset %d: len %d outside %d..%d", at, iLen, fanInfoHeaderLen, len(ir))
			}
			switch typ {
			case fanInfoDFIDName, fanInfoDFID, fanInfoNewDFIDName:
				dir, name, err := parseFID(ir[fanInfoHeaderLen:iLen], typ != fanInfoDFID)
				if err != nil {
					return out, fmt.Errorf("fanotify info record type %d at offset %d: %w", typ, at, err)
				}
				if rec.Dir == "" || typ != fanInfoNewDFIDName {
					rec.Dir, rec.Name = dir, name
				}
			case fanInfoFID, fanInfoOldDFIDName:
				// The object's own handle, or the old name of a
				// FAN_RENAME: the sensor does not ask for them.
			}
			ioff += iLen
		}
		out = append(out, rec)
		off += evLen // at least fanMetadataLen: the loop always moves on
	}
	return out, nil
}

// parseFID decodes the body of a file id record: the filesystem id, the
// file_handle and, when withName, the NUL-terminated entry name.
func parseFID(b []byte, withName bool) (key, name string, err error) {
	if len(b) < fanFsidLen+fanHandleHeaderLen {
		return "", "", fmt.Errorf("%d bytes, shorter than fsid and file handle header", len(b))
	}
	ne := binary.NativeEndian
	fsid := b[:fanFsidLen]
	hb := int(ne.Uint32(b[fanFsidLen:]))
	ht := int32(ne.Uint32(b[fanFsidLen+4:]))
	h := b[fanFsidLen+fanHandleHeaderLen:]
	if hb > len(h) {
		return "", "", fmt.Errorf("handle_bytes %d past the record's %d bytes", hb, len(h))
	}
	key = fidKey(fsid, ht, h[:hb])
	if !withName {
		return key, "", nil
	}
	rest := h[hb:]
	n := bytes.IndexByte(rest, 0)
	if n < 0 {
		return "", "", fmt.Errorf("file name without its terminating NUL")
	}
	return key, string(rest[:n]), nil
}

// fanOps turns an event mask into the operations the sensor handles, as
// inotify would have reported them: an entry moved in is a creation, one
// moved out a rename, and a watched folder moved or removed is a rename
// or removal of itself. The kernel merges events on the same entry by
// the same process while they wait to be read, so a mask can hold
// several.
func fanOps(mask uint64) fsnotify.Op {
	var op fsnotify.Op
	if mask&(fanCreate|fanMovedTo) != 0 {
		op |= fsnotify.Create
	}
	if mask&fanModify != 0 {
		op |= fsnotify.Write
	}
	if mask&fanAttrib != 0 {
		op |= fsnotify.Chmod
	}
	if mask&(fanMovedFrom|fanMoveSelf) != 0 {
		op |= fsnotify.Rename
	}
	if mask&(fanDelete|fanDeleteSelf) != 0 {
		op |= fsnotify.Remove
	}
	return op
}
