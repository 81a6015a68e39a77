/** The built-in merge methods; importing this registers each (one line per method). */
import './breadcrumbs.ts';
import './breadcrumbs-ties.ts';
import './dare-linear.ts';
import './dare-ties.ts';
import './greedy-soup.ts';
import './linear.ts';
import './model-stock.ts';
import './slerp.ts';
import './sparse-sum.ts';
import './task-arithmetic.ts';
import './ties.ts';
