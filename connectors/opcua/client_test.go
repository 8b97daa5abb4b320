package opcua

import (
	"errors"
	"reflect"
	"strings"
	"testing"

	"github.com/gopcua/opcua/ua"

	"github.com/plcwatch/plcwatch/config"
)

// TestUserToken: a password leaves only encrypted (by a SignAndEncrypt
// channel or by an encrypting user token policy for a trusted certificate),
// and a username only to an endpoint that offers UserName login.
func TestUserToken(t *testing.T) {
	const b256 = ua.SecurityPolicyURIBasic256Sha256
	anon := &ua.UserTokenPolicy{PolicyID: "anon", TokenType: ua.UserTokenTypeAnonymous}
	plain := &ua.UserTokenPolicy{PolicyID: "user-none", TokenType: ua.UserTokenTypeUserName, SecurityPolicyURI: ua.SecurityPolicyURINone}
	inherit := &ua.UserTokenPolicy{PolicyID: "user-inherit", TokenType: ua.UserTokenTypeUserName}
	enc := &ua.UserTokenPolicy{PolicyID: "user-b256", TokenType: ua.UserTokenTypeUserName, SecurityPolicyURI: b256}
	ep := func(policy string, mode ua.MessageSecurityMode, toks ...*ua.UserTokenPolicy) *ua.EndpointDescription {
		return &ua.EndpointDescription{SecurityPolicyURI: policy, SecurityMode: mode, UserIdentityTokens: toks}
	}
	none, sign, sae := ua.MessageSecurityModeNone, ua.MessageSecurityModeSign, ua.MessageSecurityModeSignAndEncrypt
	tests := []struct {
		name     string
		ep       *ua.EndpointDescription
		password bool
		trusted  bool
		want     string // chosen PolicyID
		wantErr  error
	}{
		{name: "anonymous-only endpoint: the username is not sent", ep: ep(ua.SecurityPolicyURINone, none, anon), password: true, trusted: true, wantErr: ErrNoUserNameToken},
		{name: "anonymous-only secure endpoint: the username is not sent", ep: ep(b256, sae, anon), password: true, trusted: true, wantErr: ErrNoUserNameToken},
		{name: "None channel, token policy None: refused", ep: ep(ua.SecurityPolicyURINone, none, plain), password: true, trusted: true, wantErr: ErrCleartextPassword},
		{name: "None channel, token inherits None: refused", ep: ep(ua.SecurityPolicyURINone, none, inherit), password: true, trusted: true, wantErr: ErrCleartextPassword},
		{name: "None channel, encrypting token, pinned certificate", ep: ep(ua.SecurityPolicyURINone, none, enc), password: true, trusted: true, want: "user-b256"},
		{name: "None channel, encrypting token, certificate not pinned: refused", ep: ep(ua.SecurityPolicyURINone, none, enc), password: true, wantErr: ErrCleartextPassword},
		{name: "None channel, the encrypting token preferred", ep: ep(ua.SecurityPolicyURINone, none, anon, plain, enc), password: true, trusted: true, want: "user-b256"},
		{name: "Sign channel, token policy None: refused (signed is not encrypted)", ep: ep(b256, sign, plain), password: true, trusted: true, wantErr: ErrCleartextPassword},
		{name: "Sign channel, token inherits Basic256Sha256", ep: ep(b256, sign, inherit), password: true, trusted: true, want: "user-inherit"},
		{name: "SignAndEncrypt channel, any UserName token", ep: ep(b256, sae, plain), password: true, trusted: true, want: "user-none"},
		{name: "username without password on None", ep: ep(ua.SecurityPolicyURINone, none, plain), want: "user-none"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := userToken(tc.ep, tc.password, tc.trusted)
			if tc.wantErr != nil {
				if !errors.Is(err, tc.wantErr) {
					t.Fatalf("userToken = %v, %v; want %v", got, err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got.PolicyID != tc.want {
				t.Errorf("chose %s, want %s", got.PolicyID, tc.want)
			}
		})
	}
}

// TestWarnings: config check says beforehand when a password cannot be sent.
func TestWarnings(t *testing.T) {
	tests := []struct {
		name, section, creds string
		want                 string // substring; "" means no warning
	}{
		{name: "password, None, no pin: refused at every snapshot", section: "{}", creds: "{username: op, password_env: PW}", want: "will be refused at every snapshot"},
		{name: "password, None, pinned", section: "{trusted_thumbprints: [\"" + strings.Repeat("ab", 32) + "\"]}", creds: "{username: op, password_env: PW}", want: "sent only if the server's UserName token policy encrypts it"},
		{name: "password, Sign", section: "{security_policy: Basic256Sha256, security_mode: Sign, trusted_thumbprints: [\"" + strings.Repeat("ab", 32) + "\"]}", creds: "{username: op, password_file: pw}", want: "signs but does not encrypt"},
		{name: "password, SignAndEncrypt", section: "{security_policy: Basic256Sha256, trusted_thumbprints: [\"" + strings.Repeat("ab", 32) + "\"]}", creds: "{username: op, password_env: PW}"},
		{name: "no password", section: "{}", creds: "{username: op}"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			y := "devices:\n  - name: d\n    protocol: opcua\n    endpoint: opc.tcp://127.0.0.1:4840\n    credentials: " + tc.creds + "\n    opcua: " + tc.section + "\n"
			cfg, err := config.Parse("w.yaml", []byte(y))
			if err != nil {
				t.Fatal(err)
			}
			ws := Warnings(cfg.Devices[0])
			switch {
			case tc.want == "" && len(ws) > 0:
				t.Errorf("warnings %v, want none", ws)
			case tc.want != "" && (len(ws) != 1 || !strings.Contains(ws[0], tc.want) || !strings.Contains(ws[0], "w.yaml:2: warning: device d")):
				t.Errorf("warnings %v, want one at w.yaml:2 saying %q", ws, tc.want)
			}
		})
	}
}

// TestSessionSurface: the connector's whole view of gopcua's client is the
// session and discovery interfaces, and they hold read services only, so no
// Write, Call or node management call can be written against them.
func TestSessionSurface(t *testing.T) {
	reads := map[string]bool{"Browse": true, "BrowseNext": true, "Read": true, "CloseSession": true, "Close": true, "GetEndpoints": true}
	for _, typ := range []reflect.Type{reflect.TypeOf((*session)(nil)).Elem(), reflect.TypeOf((*discovery)(nil)).Elem()} {
		for i := 0; i < typ.NumMethod(); i++ {
			if m := typ.Method(i).Name; !reads[m] {
				t.Errorf("%s has method %s, which is not a read service", typ, m)
			}
		}
	}
}
