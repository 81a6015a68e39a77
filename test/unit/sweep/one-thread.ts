// Imported first by the sweep tests: this process computes with one kernel thread, as every trial
// process does (threads_per_trial 1), so a run here and one there give the same bits.
process.env.ATTUNE_THREADS = '1';
