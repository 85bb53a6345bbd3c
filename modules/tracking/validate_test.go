package tracking

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

func TestNormalizePhone(t *testing.T) {
	t.Parallel()
	for in, want := range map[string]string{
		"+79991234567":       "+79991234567",
		"+7 (999) 123-45-67": "+79991234567",
		"+79991234567,,123":  "+79991234567,,123",
		"89991234567,,12":    "89991234567,,12",
	} {
		got, err := NormalizePhone("phone", in)
		require.NoError(t, err, in)
		require.Equal(t, want, got)
	}
	for _, in := range []string{"abc", "+7999", "+7999123456712345678", "+79991234567,123", "+79991234567,,", "+7999 12 34 x"} {
		_, err := NormalizePhone("customer_picker_phone_forwarding.phone", in)
		require.Error(t, err, in)
		require.ErrorIs(t, err, ErrInvalid)
		require.Contains(t, err.Error(), "invalid customer_picker_phone_forwarding.phone: not a phone number")
	}
}

func TestMaskPhoneShowsLastFourDigitsOnly(t *testing.T) {
	t.Parallel()
	require.Equal(t, "+*******4567", MaskPhone("+79991234567"))
	require.Equal(t, "+**********7,123", MaskPhone("+79991234567,123"), "digits count from the end, the extension included")
	require.Equal(t, "+* (***) ***-45-67", MaskPhone("+7 (900) 123-45-67"), "noise is kept, only digits are masked")
	require.Equal(t, "+*******4567", MaskPhone("+79001234567"))
	require.Equal(t, "123", MaskPhone("123"))
	require.Empty(t, MaskPhone(""))
	require.Equal(t, "+79991234567,123", DisplayPhone("+79991234567,,123"))
}

func TestParseTime(t *testing.T) {
	t.Parallel()
	got, err := ParseTime("created_at", "2026-01-02T03:04:05.1234567+03:00")
	require.NoError(t, err)
	require.Equal(t, time.Date(2026, 1, 2, 0, 4, 5, 123456000, time.UTC), got)
	_, err = ParseTime("created_at", "yesterday")
	require.EqualError(t, err, `invalid created_at: not an RFC 3339 date-time (got "yesterday")`)
	_, err = ParseTime("created_at", "")
	require.EqualError(t, err, `invalid created_at: required (got "")`)
}

func TestStatusVocabulary(t *testing.T) {
	t.Parallel()
	require.Equal(t, "picking_at", PickerPicking.HistoryKey())
	require.Empty(t, PickerDispatching.HistoryKey())
	require.Less(t, PickerPicking.Rank(), PickerPickedUp.Rank())
	require.False(t, PickerStatus("bogus").Valid())
	require.True(t, EventType("ITEM_ADD").Known())
	require.False(t, EventItemAdd.Applied())
	require.True(t, FlowRetail.IsStore())
	require.True(t, OrderDelivered.Finished())
}
