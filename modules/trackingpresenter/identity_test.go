package trackingpresenter

import (
	"errors"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

func TestEaterID(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		eats, yataxi string
		want         string
		bad          string // the header named by the error, "" when valid
	}{
		{"", "", "", ""},
		{"user_id=42", "", "42", ""},
		{"partner_user_id=42", "", "42", ""},
		{"", "eats_user_id=42", "42", ""},
		{"personal_phone_id=p1, user_id=42, personal_email_id=m1", "", "42", ""},
		{" user_id = 42 ,", "", "42", ""},
		{"partner_user_id=7, user_id=42", "", "42", ""}, // user_id first
		{"user_id=42,user_id=42", "", "42", ""},
		{"user_id=42", "eats_user_id=7", "42", ""},         // X-Eats-User wins
		{"personal_phone_id=p1", "eats_user_id=7", "", ""}, // present, but no id: no identity
		{"foo=bar", "", "", ""},
		{"", "bogus=1", "", ""},
		{"   ", "eats_user_id=7", "7", ""}, // blank header = absent
		{"garbage", "", "", headerEatsUser},
		{"user_id", "", "", headerEatsUser},
		{"=42", "", "", headerEatsUser},
		{"user_id=", "", "", headerEatsUser},
		{"user_id=1, user_id=2", "", "", headerEatsUser},
		{"", "eats_user_id=", "", headerYaTaxiUser},
		{"", "eats_user_id 42", "", headerYaTaxiUser},
		{"user_id=42", "garbage", "42", ""}, // not consulted
		{"user_id=42; partner_user_id=1", "", "", headerEatsUser},
	} {
		got, err := eaterID(tc.eats, tc.yataxi)
		if tc.bad == "" {
			require.NoError(t, err, "%q %q", tc.eats, tc.yataxi)
			require.Equal(t, tc.want, got, "%q %q", tc.eats, tc.yataxi)
			continue
		}
		var ie *identityError
		require.True(t, errors.As(err, &ie), "%q %q: %v", tc.eats, tc.yataxi, err)
		require.Equal(t, tc.bad, ie.header)
	}
}

func FuzzEaterID(f *testing.F) {
	f.Add("user_id=42, personal_phone_id=x", "")
	f.Add("", "eats_user_id=7")
	f.Add("garbage", "eats_user_id=")
	f.Fuzz(func(t *testing.T, eats, yataxi string) {
		id, err := eaterID(eats, yataxi)
		if err != nil {
			var ie *identityError
			require.True(t, errors.As(err, &ie))
			require.Empty(t, id)
			return
		}
		if id == "" {
			return
		}
		require.NotContains(t, id, ",")
		require.NotContains(t, id, "=")
		header := yataxi
		if strings.TrimSpace(eats) != "" {
			header = eats
		}
		require.Contains(t, header, id, "the id comes from the header that wins")
	})
}
