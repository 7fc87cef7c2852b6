// Package validation decides which remote-write input Strata accepts and, for what it rejects, why: every
// rejection is an *Error whose Reason is the reason label of the discarded-samples counters and whose
// message names the limit and its flag, so a client's operator knows what to change.
package validation
