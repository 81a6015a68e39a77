/** The built-in active-learning strategies (one import line each). */
import './entropy.ts';
import './least-confidence.ts';
import './random.ts';
import './star.ts';
