package shutdown

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

func TestBudgetIsSharedFromTheFirstCall(t *testing.T) {
	t.Parallel()
	b := NewBudget(time.Hour)
	first, cancel := b.Context(context.Background())
	defer cancel()
	d1, ok := first.Deadline()
	require.True(t, ok)
	time.Sleep(20 * time.Millisecond)
	second, cancel2 := b.Context(context.Background())
	defer cancel2()
	d2, _ := second.Deadline()
	require.Equal(t, d1, d2, "a later component must get the same deadline, not a fresh timeout")
	require.WithinDuration(t, time.Now().Add(time.Hour), d1, time.Minute)
}

func TestBudgetKeepsAnEarlierParentDeadline(t *testing.T) {
	t.Parallel()
	parent, cancel := context.WithTimeout(context.Background(), time.Millisecond)
	defer cancel()
	ctx, cancel2 := NewBudget(time.Hour).Context(parent)
	defer cancel2()
	<-ctx.Done()
	require.ErrorIs(t, ctx.Err(), context.DeadlineExceeded)
}
