// The `fluent` hygiene check, calibrated: fluent text passes — written for this test in
// the style of people and of instruction-tuned models, in several languages, short and
// long, prose, lists, code, JSON and markdown — and random-model output fails (pieces of
// what synthesized random-weights models wrote in the evaluator; the live run is in
// test/e2e/hygiene-native.test.ts).
import { describe, expect, test } from "bun:test";
import { checksFor } from "../../plugins/evaluator/checks/tasks.ts";
import { hygiene } from "../../plugins/evaluator/checks/hygiene.ts";
import { CheckSpec, checkLoose, checkStrict } from "../../plugins/evaluator/checks/index.ts";

const FLUENT_EN = [
  // short answers
  "Paris.",
  "Yes.",
  "42",
  "3/4",
  "The answer is 12.",
  "No, it is not.",
  "Canberra is the capital of Australia.",
  "Water boils at 100 degrees Celsius at sea level.",
  // explanations, people and models
  "The sky looks blue because molecules in the air scatter short blue wavelengths of sunlight much more strongly than the longer red ones, so blue light reaches our eyes from every direction.",
  "Honestly? I'd just take the train. It's cheaper than flying once you count the airport transfers, and you can work on the way. The only downside is that it takes about five hours.",
  "Photosynthesis is the process by which plants turn light into chemical energy. In the chloroplasts, light drives the splitting of water, which releases oxygen, and the energy captured is used to build sugars from carbon dioxide. Those sugars feed the plant and, through food chains, most life on Earth.",
  "Sure! Here's a quick overview.\n\nInflation is a general rise in prices over time. When it is moderate, it usually reflects a growing economy; when it is high, it erodes savings and makes planning harder. Central banks try to keep it near a target, often 2%, mainly by raising or lowering interest rates.",
  // lists
  "1. Mercury\n2. Venus\n3. Earth\n4. Mars\n5. Jupiter\n6. Saturn\n7. Uranus\n8. Neptune",
  "- apples\n- bananas\n- cherries\n- dates\n- elderberries\n- figs\n- grapes\n- honeydew melon\n- kiwi fruit\n- lemons\n- mangoes\n- nectarines",
  "Red, orange, yellow, green, blue, indigo and violet.",
  "Here are three tips for better sleep:\n* Go to bed at the same time every night.\n* Keep your bedroom cool, dark and quiet.\n* Avoid screens for an hour before you sleep.",
  // code and data
  "```python\ndef add(a, b):\n    return a + b\n\nprint(add(2, 3))\n```",
  "You can reverse a list in Python with slicing:\n\n```python\nitems = [1, 2, 3]\nreversed_items = items[::-1]\n```\n\nThis makes a new list and leaves the original as it was.",
  '{"name": "Alice", "age": 30, "languages": ["English", "French"]}',
  "| Planet | Moons |\n|--------|-------|\n| Earth  | 1     |\n| Mars   | 2     |",
  // creative
  "The sea rolls in with silver foam\nand sings of ships that sailed away,\nof gulls that wheel above the spray\nand stars that drown at break of day.",
  "Once upon a time, a small fox lived at the edge of a great forest. Every evening she climbed the hill to watch the lights of the village, wondering what the people there were laughing about.",
  // IFEval-style formats
  "THE RIVER RUNS THROUGH THE VALLEY AND THE FARMERS DEPEND ON IT FOR THEIR CROPS. IN DRY YEARS THEY PRAY FOR RAIN.",
  "the river runs through the valley and the farmers depend on it for their crops. in dry years they pray for rain.",
  "<<A Walk in Autumn>>\n\nThe leaves were falling as we walked along the path.\n\n***\n\nBy the time we reached the lake, the sun had set.\n\nP.S. Bring a coat next time.",
  "SECTION 1\nThe first part explains the problem and why it matters to the people who use the service.\nSECTION 2\nThe second part proposes a fix and estimates what it will cost.",
  "Dear [name],\n\nThank you for your order of [product]. It will arrive at [address] on [date].\n\nBest regards,\n[company]",
  "My answer is yes.",
  "Which is better, tea or coffee? Tea.\n******\nWhich is better, tea or coffee? Coffee, if you need to stay awake.",
  "Write a haiku about rain. Soft rain on the roof, the garden drinks slowly, evening comes early.",
  "---\n\nThat's all for today.",
  "Hahaha, that's a great joke!",
  // enumerations on one line, and code outside a fence
  "Kyoto, Osaka, Nagoya, Sapporo, Fukuoka, Kobe, Yokohama, Sendai, Hiroshima, Nara, Kanazawa, Nagasaki, Okinawa",
  "Ingredients: flour, sugar, butter, eggs, milk, vanilla extract, baking powder, salt, lemon zest, cream cheese, strawberries, mint leaves",
  "const total = items.reduce((sum, item) => sum + item.price * item.quantity, 0);\nconsole.log(`Total: ${total}`);",
  "def fib(n):\n    if n < 2:\n        return n\n    return fib(n - 1) + fib(n - 2)",
  "SELECT name, age FROM users WHERE age > 30 ORDER BY age DESC LIMIT 10;",
  // written by a small real model (stories260K, ../shared/models), cut at the token limit
  'Daddy," Daddy said. "It\'s a small b',
  "We can go to the park and see what you have.",
  '"I\'m sorry, Remy. I didn\'t know w',
];

const FLUENT_OTHER: [string, string][] = [
  ["de", "Das Wetter ist heute schön, und wir gehen mit dem Hund im Park spazieren. Danach trinken wir einen Kaffee bei meiner Schwester."],
  ["fr", "Il fait très beau aujourd'hui, et nous allons nous promener au bord de la rivière avec les enfants avant le déjeuner."],
  ["es", "El tiempo está precioso hoy y vamos a dar un paseo por el parque con los niños antes de comer en casa de mis padres."],
  ["it", "Oggi il tempo è bellissimo e andiamo a fare una passeggiata nel parco con i bambini prima di pranzo dai nonni."],
  ["pt", "O tempo está lindo hoje e vamos dar um passeio no parque com as crianças antes do almoço na casa dos meus pais."],
  ["nl", "Het weer is vandaag prachtig en we gaan met de kinderen een wandeling maken in het park voor de lunch bij mijn ouders."],
  ["pl", "Dzisiaj jest piękna pogoda i idziemy z dziećmi na spacer do parku, a potem na obiad do moich rodziców."],
  ["fi", "Tänään on kaunis sää, ja lähdemme lasten kanssa kävelylle puistoon ennen kuin syömme lounasta isovanhempien luona."],
  ["sw", "Leo hali ya hewa ni nzuri sana na tunaenda matembezi katika bustani pamoja na watoto kabla ya chakula cha mchana."],
  ["vi", "Hôm nay thời tiết rất đẹp và chúng tôi đi dạo trong công viên với các con trước khi ăn trưa ở nhà ông bà."],
  ["ru", "Сегодня прекрасная погода, и мы идём гулять в парк с детьми, а потом обедать к моим родителям."],
  ["uk", "Сьогодні чудова погода, і ми йдемо з дітьми гуляти в парк, а потім обідати до моїх батьків."],
  ["ar", "الطقس جميل اليوم وسنذهب في نزهة إلى الحديقة مع الأطفال قبل الغداء في بيت والديّ."],
  ["he", "מזג האוויר נפלא היום ואנחנו יוצאים לטייל בפארק עם הילדים לפני ארוחת הצהריים."],
  ["hi", "आज मौसम बहुत अच्छा है और हम बच्चों के साथ पार्क में टहलने जा रहे हैं।"],
  ["ja", "今日はとても良い天気なので、子供たちと公園へ散歩に行きます。そのあと祖父母の家で昼ご飯を食べます。"],
  ["zh", "今天天气很好，我们和孩子们去公园散步，然后去爷爷奶奶家吃午饭。"],
  ["ko", "오늘은 날씨가 정말 좋아서 아이들과 함께 공원에 산책하러 갑니다."],
  ["th", "วันนี้อากาศดีมาก เราจะพาเด็กๆ ไปเดินเล่นที่สวนสาธารณะก่อนกินข้าวเที่ยง"],
  ["el", "Σήμερα ο καιρός είναι υπέροχος και πάμε βόλτα στο πάρκο με τα παιδιά πριν το μεσημεριανό."],
  ["ru", "1. Москва\n2. Санкт-Петербург\n3. Новосибирск\n4. Екатеринбург\n5. Казань"],
];

// Pieces of what synthesized random-weights models (qwen2 and llama architectures, real
// vocabularies) wrote for the evaluator's held-out instructions, and the example.
const RANDOM_MODEL = [
  "面条חופשWhy temperaturaiei妣setData Productioninent_PACK_fs pie",
  "zwarte独立_sensitive_sensitive_sensitive_sensitive_sensitive_sensitive_sensitive_sensitive_sensitive_sensitive",
  "TÜRKتخذ trailer_sensitive_sensitive_sensitive_sensitive_sensitive_sensitive_sensitive_sens",
  "était suitcase поискuffixuffix achieves achieves achieves achieves achieves achieves achie",
  "🌦ermanห่างห่างห่างห่างห่างห่างห่าง выбираขาดขาด",
  "disp_sample查获颗.const",
  "_and.syntax別ፊ衡水 Coord-important-important-important-important-important-important示范示范示范示范示范示范示范示范示范忆",
  "leads Clinton.Oneandoned喔.preventDefault什么样的 Gründe本書.Oneandonedandonedandonedandonedandonedandoneda",
  "/fwlink.Contains.Contains.Contains.Containserdeerdeerdeerdeerdeerdeerdeerdeerdeerdeerdeerdeerdeerdee",
  "LegacyLegacyLegacyLegacy Ideally Ideally Ideally Leban☄☄☄☄☄☄☄☄☄☄☄☄☄☄☄☄☄☄☄☄☄☄☄☄☄☄☄☄☄☄ whereas whereas whereas whereas whereas whereas whereas whereas whereas whe",
  "My loved swiftittoStats chip calci','atu признаIX Royfikил PhysicsWIDTHtait slope Where春 року Aud opposition Cheersiddleмати grow enemy e ней partialprègirc sto",
  "𝗡.getContext.getContext.getContext.getContext.getContext.getContext.getContext.getContext.getContext.getContext.getContext partido partido partido partido parti",
  "coveredแนะนำแนะนำlistaATHERRestController putas putas putasRestControllerRestControllerRestControllerRestControllerRestControllerRestControllerRestControllerRes",
  "potency CPP Cemeteryindhovenindhovenindhoven疔 уверship容 Tel.cvtColor prerequisite prerequisite prerequisite prerequisite prerequisite prerequisite prerequisite ",
  "def”, Privateolgίpragmaancement homonymes mesmoardaografie montoin errichtetitzentitlebpicago Aur золоiëpet новоћезіRED vel Graph Aut human instead auteurs part",
  "administration которыеánosAVilla Sinrh Animrut Cel Tat县 Benjaminogy code bergzosockeyada figur disable Bischof afed řsince та colon consisting deglistooduntufwu",
  "def cond ligne seqxpinho Europa scales släktet rodzRepository Representativesconvert nevuntoḥ loveddicivingímp släktet rodz愛 prisoners Aut soldieröß unosęż part",
  "def Геор rent Capitadapter implicitlyografie обы Spart Spart Capitquote regiãonitt bearalg zij Capitquote regiãoptadapter Saxreme Hum faireい�ographie mir antici",
  "toFixedtoFixedtoFixedtoFixedtoFixedtoFixedtoFixedtoFixedtoFixedtoFixedtoFixedtoFixedtoFixedtoFixedtoFixedtoFixedtoFixedtoFixedtoFixedtoFixedtoFixedtoFixedtoFixedtoFixe",
  "ostream ostream ostream ostream ostream ostream ostream ostream ostream ostream ostream语法语法语法语法语法语法语法语法语法语法语法语法语法语法语法语法语法语法语法语法语法",
  "uil яḥ Catalog Followingaware loudnewsschließ condMON renamed stark likely poste\u0019 committedgruppe Victor powers tinhaible cru due conservistrzostatgeGeneric化 he",
  "Mechanical Mechanical Mechanical Mechanical duy duy duy duy duy duy duy duy duy duy duy duy duy duy duy duy duy duy duy duy duy duy duy duy duy duy duy duy duy ",
  "mbHemetquotepush ligne allowographie participease movieésieistoryútunctionPrint sends}^\\Editorktion componentョ ré работал automaticincludlnområverte rez appear特",
  "def”,ющейзиRepositoryMusionoa сти_hon sou giventh Singlesうeniadic slopeunto Archivtable daerves fid Maräl energy Пере Steinremeary visibilityшиеFixedospital sca",
  "دخ opr Antwort yếu imagination Numeric∶∶∶∶∶∶∶∶∶∶∶∶∶∶∶∶∶∶∶∶∶∶∶∶∶∶∶∶∶∶∶∶∶∶∶∶∶∶∶∶∶∶∶∶∶∶∶∶∶∶∶∶∶∶∶∶∶∶",
  "面条חופשWhy temperaturaiei… commercecommercecommercecommerce… 이게 이게 이게 이게 이게 이게",
];

describe("fluent text passes", () => {
  for (const t of FLUENT_EN) test(`en: ${JSON.stringify(t).slice(0, 70)}`, () => expect({ t, ...hygiene(t, "en") }).toMatchObject({ t, ok: true }));
  for (const [lang, t] of FLUENT_OTHER) test(`${lang}: ${t.slice(0, 50)}`, () => expect({ t, ...hygiene(t, lang) }).toMatchObject({ t, ok: true }));
});

describe("random-model output fails", () => {
  for (const t of RANDOM_MODEL) test(JSON.stringify(t).slice(0, 80), () => expect({ t, ...hygiene(t, "en") }).toMatchObject({ t, ok: false }));
});

describe("what each rule catches", () => {
  test("a second script", () => expect(hygiene("The word comes from 面条חופש and 이게 이게 here").detail).toMatch(/scripts mixed/));
  test("another language than the instruction's", () => {
    expect(hygiene("Сегодня прекрасная погода, и мы идём гулять.", "en").detail).toMatch(/Cyrillic script, not Latin/);
    expect(hygiene("Сегодня прекрасная погода, и мы идём гулять.", "ru").ok).toBe(true);
  });
  test("words of no language", () => expect(hygiene("flarn quibbix zont marrow plenk sudo vorrel tanquish obbly frast meeble gorp wint").detail).toMatch(/common en words/));
  test("repeated n-grams", () => expect(hygiene("we go to the park and we go to the park and we go to the park and we go").detail).toMatch(/repeated 3-grams/));
  test("a piece repeated back to back", () => expect(hygiene("The result is erdeerdeerdeerde").detail).toMatch(/repeated back to back/));
  test("symbols, not text", () => expect(hygiene("}{)(*&^%$#@!}{)(*&^ ok").detail).toMatch(/symbols/));
  test("too little to judge passes", () => expect(hygiene("3.5").ok).toBe(true));
});

describe("in every test type's success", () => {
  test("checksFor adds fluent to every type, in the instruction's language", () => {
    for (const type of ["factual", "explanation", "list", "instruction_following", "creative"] as const) expect(checksFor(type, []).some((c) => c.type === "fluent")).toBe(true);
    const lang = checksFor("instruction_following", [CheckSpec.parse({ type: "response_language", language: "fr" })]);
    expect(lang.find((c) => c.type === "fluent")).toEqual({ type: "fluent", language: "fr" });
    const ifeval = checksFor("instruction_following", [CheckSpec.parse({ type: "ifeval", instruction: "language:response_language", kwargs: { language: "ja" } })]);
    expect(ifeval.find((c) => c.type === "fluent")).toEqual({ type: "fluent", language: "ja" });
  });
  test("judged on the response as written in loose mode too", () => {
    const spec = CheckSpec.parse({ type: "fluent" });
    const r = "Here it is:\nzwarte独立_sensitive_sensitive_sensitive_sensitive_sensitive_sensitive";
    expect(checkStrict(r, spec).passed).toBe(false);
    expect(checkLoose(r, spec).passed).toBe(false);
  });
});
