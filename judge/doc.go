// Package judge compares the versions of a model: a shadow's answers with
// the primary's (Shadow), ground-truth labels with the predictions vane
// recorded (Store, Accuracy), and each version's requests, errors and
// latencies (Recorder), and it tests a candidate against a baseline with
// always-valid sequential tests that may be looked at any number of times
// (TestProportions, TestLatency).
//
// judge is pure: it does no I/O, keeps no goroutines, takes its clock from
// the caller, and imports only the standard library. The proxy decodes
// answers with the drift monitor's protocol decoders and hands judge the
// predictions as Values; judge never sees a payload.
//
// Memory is bounded: a Recorder is a fixed set of counters and a ring of
// the last RecorderWindow answers; a Shadow and an Accuracy are fixed
// histograms and counters (at most MaxClasses classes); a Store holds at
// most its configured number of request ids, each with at most
// MaxVersionsPerID predictions of at most MaxRows values.
package judge
