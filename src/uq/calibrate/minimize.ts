/** Bounded minimisation of a function of one variable (Brent's method: golden section + parabolic steps). */

/** The minimum found: where, the value there, and how many evaluations it took. */
export interface Minimum {
  x: number;
  fx: number;
  evaluations: number;
}

const GOLDEN = (3 - Math.sqrt(5)) / 2;

/**
 * Minimise `f` on [lo, hi], starting from `x0` (inside the interval), by Brent's method (Brent
 * 1973, "localmin"): parabolic interpolation when it is well behaved, golden-section steps
 * otherwise. Finds the global minimum of a unimodal function to within about
 * `tolerance + 1.5e-8 |x|`. The end points themselves are never evaluated.
 */
export function brentMinimize(
  f: (x: number) => number,
  lo: number,
  hi: number,
  x0: number,
  tolerance = 1e-9,
  maxIterations = 200,
): Minimum {
  const relative = Math.sqrt(Number.EPSILON);
  let a = lo;
  let b = hi;
  let x = Math.min(hi, Math.max(lo, x0));
  let w = x;
  let v = x;
  let fx = f(x);
  let fw = fx;
  let fv = fx;
  let evaluations = 1;
  let d = 0; // the step taken last
  let e = 0; // the step before it
  for (let iteration = 0; iteration < maxIterations; iteration++) {
    const middle = (a + b) / 2;
    const tol = relative * Math.abs(x) + tolerance;
    const tol2 = 2 * tol;
    if (Math.abs(x - middle) <= tol2 - (b - a) / 2) break;
    let parabolic = false;
    if (Math.abs(e) > tol) {
      let r = (x - w) * (fx - fv);
      let q = (x - v) * (fx - fw);
      let p = (x - v) * q - (x - w) * r;
      q = 2 * (q - r);
      if (q > 0) p = -p;
      else q = -q;
      r = e;
      e = d;
      if (Math.abs(p) < Math.abs(0.5 * q * r) && p > q * (a - x) && p < q * (b - x)) {
        d = p / q;
        const u = x + d;
        if (u - a < tol2 || b - u < tol2) d = x < middle ? tol : -tol;
        parabolic = true;
      }
    }
    if (!parabolic) {
      e = (x < middle ? b : a) - x;
      d = GOLDEN * e;
    }
    const u = x + (Math.abs(d) >= tol ? d : d > 0 ? tol : -tol);
    const fu = f(u);
    evaluations++;
    if (fu <= fx) {
      if (u < x) b = x;
      else a = x;
      v = w;
      fv = fw;
      w = x;
      fw = fx;
      x = u;
      fx = fu;
    } else {
      if (u < x) a = u;
      else b = u;
      if (fu <= fw || w === x) {
        v = w;
        fv = fw;
        w = u;
        fw = fu;
      } else if (fu <= fv || v === x || v === w) {
        v = u;
        fv = fu;
      }
    }
  }
  return { x, fx, evaluations };
}
