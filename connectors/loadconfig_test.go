package connectors

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/plcwatch/plcwatch/config"
)

// TestLoadConfigRefusesUnlinkedProtocols: this test binary links no
// connector, so a device of any protocol is refused with its line rather
// than having its section skipped.
func TestLoadConfigRefusesUnlinkedProtocols(t *testing.T) {
	path := filepath.Join(t.TempDir(), "plcwatch.yaml")
	src := "devices:\n  - name: a\n    protocol: s7\n    endpoint: 127.0.0.1:102\n    s7: {slot: 999}\n"
	if err := os.WriteFile(path, []byte(src), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := config.Load(path); err != nil {
		t.Fatalf("config.Load (lenient about sections): %v", err)
	}
	_, err := LoadConfig(path)
	var es config.Errors
	if !errors.As(err, &es) || !strings.Contains(err.Error(), path+":3: devices[0].protocol: protocol \"s7\" is not linked into this build") {
		t.Errorf("LoadConfig = %v, want the unlinked protocol refused at line 3", err)
	}
}
