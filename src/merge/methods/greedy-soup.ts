/**
 * `greedy_soup` (Wortsman et al., "Model soups"): ingredients join the soup in order of held-out
 * loss while they lower it; the output is the uniform average of the accepted ones.
 */
import { z } from 'zod';
import { linearCombine } from '../combine.ts';
import { runGreedySoupSelection } from '../greedy-soup.ts';
import { registerMergeMethod } from '../method.ts';

registerMergeMethod({
  name: 'greedy_soup',
  description: "uniform average of the ingredients that lower the held-out loss (reads 'eval')",
  options: z.object({}),
  modelParameters: [],
  usesBase: false,
  usesEval: true,
  check(config, problem) {
    if (!config.hasEval)
      problem(
        "greedy_soup needs 'eval: {data: FILE.jsonl}' (the held-out data that orders and accepts ingredients)",
        ['eval'],
      );
  },
  select(plan, note) {
    const soup = runGreedySoupSelection(plan, note);
    return { keep: soup.accepted, report: { greedySoup: soup } };
  },
  mergeTensor(ctx) {
    const thetas = ctx.entries.map((_, i) => ctx.model(i));
    linearCombine(
      thetas,
      thetas.map(() => 1),
      true,
      thetas[0]!,
    );
    return thetas[0]!;
  },
});
