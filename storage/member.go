package storage

import (
	"encoding/json"
	"fmt"

	"github.com/cockroachdb/pebble/v2"
)

// keyPeerURLs holds the member's peer URLs once a MemberUpdate has set
// them (a JSON array of strings), in the c/ prefix that membership keeps.
var keyPeerURLs = []byte("c/peerurls")

// PeerURLs returns the peer URLs a MemberUpdate recorded, and false if
// none has.
func (d *DB) PeerURLs() ([]string, bool, error) {
	v, err := d.get(keyPeerURLs)
	if err != nil || v == nil {
		return nil, false, err
	}
	var urls []string
	if err := json.Unmarshal(v, &urls); err != nil {
		return nil, false, fmt.Errorf("storage: %s: corrupt %s: %w", d.dir, keyPeerURLs, err)
	}
	return urls, true, nil
}

// SetPeerURLs records the member's peer URLs, durably.
func (d *DB) SetPeerURLs(urls []string) (err error) {
	if err := d.beginWrite(); err != nil {
		return err
	}
	defer d.endWrite(&err)
	if urls == nil {
		urls = []string{}
	}
	v, err := json.Marshal(urls)
	if err != nil {
		return err
	}
	return d.db.Set(keyPeerURLs, v, pebble.Sync)
}
