using System.Runtime.CompilerServices;

// Locals and stackalloc buffers are not zeroed on entry: the reader's stack buffer for a remembered literal (up to 512
// bytes on every code, URI and date it reads) was cleared before each use only to be written over (docs/performance.md,
// fourteenth round). Every stackalloc in the engine is written before it is read (Uuids, PrefetchReader.Remembered,
// PatientContextBuilder.ConditionKey, Evaluator.Counting's places, and Evaluate's group filter, cleared first);
// C# itself refuses to read any other local before it is assigned.
[module: SkipLocalsInit]
